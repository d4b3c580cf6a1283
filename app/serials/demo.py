"""Demo newspapers and magazines (part of the demo city, app.org.demo): subscriptions of the
current year with the issues received up to today, so that the receive page and the
periodicals register show something from the first start."""
import datetime

from sqlalchemy import select

from app.collection.models import Funding
from app.core.i18n import local_today
from app.serials.models import Frequency, PeriodicalIssue, PeriodicalSubscription

# (title, publisher, frequency, copies per issue, price per issue, funding, schools)
TITLES = [
    ("Báo Nhi Đồng", "Thành Đoàn TP. Hồ Chí Minh", Frequency.weekly, 2, 8000,
     Funding.state_budget, ("79000001",)),
    ("Tạp chí Toán Tuổi thơ", "Nhà xuất bản Giáo dục Việt Nam", Frequency.monthly, 1, 25000,
     Funding.state_budget, ("79000001", "79000002")),
    ("Báo Giáo dục và Thời đại", "Bộ Giáo dục và Đào tạo", Frequency.daily, 1, 5000,
     Funding.socialization, ("79000001",)),
]


def _issue_days(frequency, year, today):
    """(number, issue date, received on) of the year's issues received by `today`."""
    start = datetime.date(year, 1, 1)
    if frequency == Frequency.weekly:
        # Every Thursday, received the next day.
        first = start + datetime.timedelta(days=(3 - start.weekday()) % 7)
        days = [first + datetime.timedelta(weeks=n) for n in range(53)]
        lag = 1
    elif frequency == Frequency.monthly:
        days = [datetime.date(year, m, 1) for m in range(1, 13)]
        lag = 4
    else:
        # Daily: the last ten days only (the demo keeps small).
        days = [today - datetime.timedelta(days=n) for n in range(10, 0, -1)]
        days = [d for d in days if d.year == year]
        lag = 0
    result = []
    for day in days:
        received = day + datetime.timedelta(days=lag)
        if day.year == year and received <= today:
            result.append((day, received))
    return result


def load_demo_serials(session, schools):
    from app.catalog.models import DocumentType, Record

    today = local_today()
    periodical = session.scalar(select(DocumentType).where(DocumentType.code == "BC"))
    for title, publisher, frequency, copies, issue_price, funding, codes in TITLES:
        for code in codes:
            school = schools[code]
            record = Record(school=school, school_id=school.id, title=title,
                            publisher=publisher, place="TP. Hồ Chí Minh", year=today.year,
                            language="vie", document_type=periodical)
            record.refresh_search_fields()
            session.add(record)
            session.flush()
            days = _issue_days(frequency, today.year, today)
            sub = PeriodicalSubscription(
                school_id=school.id, record_id=record.id, year=today.year,
                frequency=frequency, copies_per_issue=copies,
                price=issue_price * copies * {Frequency.weekly: 52, Frequency.monthly: 12,
                                              Frequency.daily: 300}[frequency],
                issue_price=issue_price, funding=funding)
            session.add(sub)
            session.flush()
            for n, (day, received) in enumerate(days, start=1):
                number = str(day.timetuple().tm_yday if frequency == Frequency.daily else n)
                session.add(PeriodicalIssue(
                    school_id=school.id, subscription_id=sub.id, number=number,
                    issue_date=day, received_on=received,
                    copies=copies if n % 9 else copies - 1 or 1,
                    note="Thiếu 1 bản" if copies > 1 and n % 9 == 0 else None))
    session.flush()
