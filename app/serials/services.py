"""Rules of subscriptions and received issues (plain functions over a session).

The views (generated CRUD and the receive page) call these; every message is Vietnamese
through the catalogue. Nothing is written when a rule fails.
"""
import datetime
from collections import defaultdict

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from app.catalog.models import DocumentType, Record
from app.collection.models import Funding
from app.core.errors import ValidationError
from app.core.i18n import DATE_FORMAT, format_date, local_today
from app.serials.models import ISSUES_PER_YEAR, PeriodicalIssue, PeriodicalSubscription

PERIODICAL_TYPES = ("BC",)  # document types of newspapers and magazines
FIRST_YEAR = 2000


class IssueRejected(ValidationError):
    """One or more problems with an issue typed on the receive page (all of them listed)."""

    def __init__(self, messages):
        self.messages = [str(m) for m in messages]
        super().__init__(" ".join(self.messages))

    def __str__(self):
        return " ".join(self.messages)


def is_periodical(session, record_id):
    return session.scalar(select(func.count()).select_from(Record).join(
        DocumentType, DocumentType.id == Record.document_type_id).where(
        Record.id == record_id, DocumentType.code.in_(PERIODICAL_TYPES))) > 0


def periodical_records(session, school_id):
    """The school's records of newspapers and magazines (the titles one may subscribe to)."""
    return session.scalars(select(Record).join(
        DocumentType, DocumentType.id == Record.document_type_id).where(
        Record.school_id == school_id, DocumentType.code.in_(PERIODICAL_TYPES))
        .order_by(Record.title)).all()


# --- Subscriptions ------------------------------------------------------------------------

def check_subscription(session, sub, today=None):
    """Raise ValidationError when the subscription breaks a rule."""
    today = today or local_today()
    record_id = sub.record.id if sub.record is not None else sub.record_id
    if record_id is None:
        raise ValidationError(_l("Choose the newspaper or magazine."), field="record")
    if not is_periodical(session, record_id):
        raise ValidationError(_l("This title is not a newspaper or magazine: choose a record "
                                 "of document type “Newspapers and magazines”."),
                              field="record")
    if sub.year is None or not FIRST_YEAR <= sub.year <= today.year + 1:
        raise ValidationError(_l("The year of the subscription must be between %(first)d and "
                                 "%(last)d."), field="year", first=FIRST_YEAR,
                              last=today.year + 1)
    if sub.copies_per_issue is None or sub.copies_per_issue < 1:
        raise ValidationError(_l("The number of copies per issue must be at least 1."),
                              field="copies_per_issue")
    for value in (sub.price, sub.issue_price):
        if value is not None and value < 0:
            raise ValidationError(_l("A price cannot be negative."), field="price")
    same = select(PeriodicalSubscription.id).where(
        PeriodicalSubscription.school_id == sub.school_id,
        PeriodicalSubscription.record_id == record_id,
        PeriodicalSubscription.year == sub.year)
    if sub.id is not None:
        same = same.where(PeriodicalSubscription.id != sub.id)
    with session.no_autoflush:
        if session.scalar(same.limit(1)) is not None:
            raise ValidationError(_l("This title already has a subscription for %(year)d."),
                                  field="year", year=sub.year)
        if sub.id is not None:
            # Issues already received stay in the subscription's year.
            outside = session.scalar(select(func.count()).select_from(PeriodicalIssue).where(
                PeriodicalIssue.subscription_id == sub.id,
                func.extract("year", PeriodicalIssue.issue_date) != sub.year))
            if outside:
                raise ValidationError(_l("%(n)d issues received are dated outside %(year)d: "
                                         "the year cannot be changed."), field="year",
                                      n=outside, year=sub.year)


def subscriptions(session, school_id, year=None):
    query = (select(PeriodicalSubscription).join(
        Record, Record.id == PeriodicalSubscription.record_id)
        .where(PeriodicalSubscription.school_id == school_id))
    if year is not None:
        query = query.where(PeriodicalSubscription.year == year)
    return session.scalars(query.order_by(PeriodicalSubscription.year.desc(),
                                          Record.title)).all()


def expected_issues(sub):
    return ISSUES_PER_YEAR.get(sub.frequency)


# --- Issues -------------------------------------------------------------------------------

def issue_problems(session, issue, subscription, today=None, mistyped=()):
    """The list of messages (empty when the issue may be saved); `mistyped`: fields whose
    text was not understood (already reported: not reported again as missing)."""
    today = today or local_today()
    problems = []
    number = (issue.number or "").strip()
    issue.number = number
    if not number:
        problems.append(_l("Type the issue number."))
    if issue.issue_date is None:
        if "issue_date" not in mistyped:
            problems.append(_l("Type the date of the issue (dd/mm/yyyy)."))
    elif issue.issue_date > today:
        problems.append(_l("The issue is dated %(date)s, in the future.",
                           date=format_date(issue.issue_date)))
    elif issue.issue_date.year != subscription.year:
        problems.append(_l("The issue is dated %(date)s, outside the subscription's year "
                           "%(year)d.", date=format_date(issue.issue_date),
                           year=subscription.year))
    if issue.received_on is None:
        if "received_on" not in mistyped:
            problems.append(_l("Type the date received (dd/mm/yyyy)."))
    elif issue.received_on > today:
        problems.append(_l("The date received %(date)s is in the future.",
                           date=format_date(issue.received_on)))
    elif issue.issue_date is not None and issue.received_on < issue.issue_date:
        problems.append(_l("The issue was received on %(received)s, before its date "
                           "%(date)s.", received=format_date(issue.received_on),
                           date=format_date(issue.issue_date)))
    if (issue.copies is None and "copies" not in mistyped) or (
            issue.copies is not None and issue.copies < 1):
        problems.append(_l("The number of copies received must be at least 1."))
    if number:
        same = select(PeriodicalIssue.id).where(
            PeriodicalIssue.subscription_id == subscription.id,
            PeriodicalIssue.number == number)
        if issue.id is not None:
            same = same.where(PeriodicalIssue.id != issue.id)
        with session.no_autoflush:
            if session.scalar(same.limit(1)) is not None:
                problems.append(_l("Issue %(number)s of %(title)s (%(year)d) has already been "
                                   "received.", number=number, title=subscription.title,
                                   year=subscription.year))
    return problems


def check_issue(session, issue, today=None):
    """Raise IssueRejected when the issue breaks a rule (the CRUD views' validator)."""
    subscription = issue.subscription
    if subscription is None and issue.subscription_id is not None:
        subscription = session.get(PeriodicalSubscription, issue.subscription_id)
    if subscription is None:
        raise IssueRejected([_l("Choose the subscription.")])
    if issue.school_id is not None and subscription.school_id != issue.school_id:
        raise IssueRejected([_l("Choose the subscription.")])
    problems = issue_problems(session, issue, subscription, today)
    if problems:
        raise IssueRejected(problems)


def parse_date(text, label):
    text = (text or "").strip()
    if not text:
        return None, None
    for fmt in (DATE_FORMAT, "%Y-%m-%d"):
        try:
            return datetime.datetime.strptime(text, fmt).date(), None
        except ValueError:
            continue
    return None, _l("%(name)s: “%(value)s” is not a date (dd/mm/yyyy).", name=label,
                    value=text[:20])


def parse_count(text, default):
    text = (text or "").strip()
    if not text:
        return default, None
    if not text.isdigit():
        return None, _l("The number of copies received must be a whole number.")
    return int(text), None


def receive_issue(session, subscription, number, issue_date, received_on=None, copies=None,
                  note=None, today=None):
    """Record an issue received (the receive page): the typed texts are checked together;
    IssueRejected lists every problem and nothing is added. Returns the new issue (flushed).
    An empty date received is today; empty copies are the subscription's copies per issue."""
    today = today or local_today()
    problems, mistyped = [], set()
    day, error = parse_date(issue_date, _l("Date of the issue"))
    if error:
        problems.append(error)
        mistyped.add("issue_date")
    received, error = parse_date(received_on, _l("Date received"))
    if error:
        problems.append(error)
        mistyped.add("received_on")
    elif received is None:
        received = today
    count, error = parse_count(copies, subscription.copies_per_issue)
    if error:
        problems.append(error)
        mistyped.add("copies")
    # Linked by key only: the new issue stays out of the session until every check passed.
    issue = PeriodicalIssue(school_id=subscription.school_id, subscription_id=subscription.id,
                            number=(number or "")[:30], issue_date=day, received_on=received,
                            copies=count, note=(note or "").strip()[:255] or None)
    problems += issue_problems(session, issue, subscription, today, mistyped)
    if problems:
        raise IssueRejected(problems)
    session.add(issue)
    session.flush()
    return issue


# --- The year's grid ------------------------------------------------------------------------

def year_grid(session, subscription):
    """{(month, day): [issue numbers]} of the subscription's issues by issue date, with the
    issues in date order."""
    issues = session.scalars(select(PeriodicalIssue).where(
        PeriodicalIssue.subscription_id == subscription.id)
        .order_by(PeriodicalIssue.issue_date, PeriodicalIssue.id)).all()
    cells = defaultdict(list)
    for issue in issues:
        cells[(issue.issue_date.month, issue.issue_date.day)].append(issue.number)
    return cells, issues


# --- Acquisitions (the library report) ----------------------------------------------------

def acquisitions(session, school_id, start, end):
    """(copies received, value from the state budget, value from other funding) of the
    issues received from `start` to `end`: copies × price per issue of the subscription."""
    rows = session.execute(
        select(PeriodicalSubscription.funding, func.sum(PeriodicalIssue.copies),
               func.sum(PeriodicalIssue.copies * PeriodicalSubscription.issue_price))
        .select_from(PeriodicalIssue)
        .join(PeriodicalSubscription,
              PeriodicalSubscription.id == PeriodicalIssue.subscription_id)
        .where(PeriodicalIssue.school_id == school_id, PeriodicalIssue.received_on >= start,
               PeriodicalIssue.received_on <= end)
        .group_by(PeriodicalSubscription.funding)).all()
    copies = budget = other = 0
    for funding, count, amount in rows:
        copies += int(count or 0)
        if funding == Funding.state_budget:
            budget += int(amount or 0)
        else:
            other += int(amount or 0)
    return copies, budget, other
