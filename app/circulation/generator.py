"""A school year of loans for the generated schools, deterministic (for load tests).

Runs after `app.readers.generator.generate_readers` on the same (scale, seed). Per school it
writes the circulation settings and the loan register of the school year 2025–2026, as it
stands on its last day (`until`, 31/05/2026 by default):

- loans on the library's open days (no Sundays, no city holidays, no Saturdays where the
  school closes them), more in October–November and April (book day), fewer in September,
  around Tết and during the May exams; at break times rather than during lessons;
- about 20 loans per student over the year on average (fewer in preschool and upper
  secondary, more in primary), about 20 per teacher; readers differ a lot (gamma spread);
- students take children's books (STN) and reference books (STK) by age, teachers
  professional books (SNV) too; popular copies go out more often;
- due dates from the city's default rules (`LoanRule`, school_id NULL) through
  `policies.pick_rule`: 10 days for students, 30 for teachers, textbooks until the end of
  the school year, moved to the next open day as `policies.next_open_day` does; some loans
  renewed once;
- some students borrow their grade's textbooks for the year in September (the shared
  textbook shelf) and bring them back in the last two weeks of May;
- a copy is never lent twice at once, a reader never exceeds the rule's maximum; about 97 %
  returned (some late), a few cancelled at the desk, the rest still open on `until`: those
  borrowed in the last days, and some never brought back (overdue). Copies on an open loan
  get the status on_loan.

Only copies that are available in the catalogue are lent (lost, damaged, withdrawn and
reading-room copies are not). One transaction per chunk of schools (PostgreSQL: COPY;
SQLite: executemany); schools that already have circulation settings are skipped, so an
interrupted run resumes with the same arguments. Not in the audit log, like the city.
"""
import concurrent.futures
import datetime
import itertools
import random
import re
import time

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, select, update

from app.catalog.generator import _Writer
from app.catalog.models import DocumentType, Record
from app.circulation import policies
from app.circulation.models import CirculationSettings, ClosedDay, LoanRule
from app.collection.models import Copy, CopyStatus, LibrarySettings
from app.core.errors import ValidationError
from app.org.models import AppUser, SchoolYear
from app.readers.generator import _units, _with_rows, plan_readers
from app.readers.models import Reader, ReaderCategory

YEAR_START = datetime.date(2025, 9, 5)  # used when the database has no school year 2025–2026
YEAR_END = datetime.date(2026, 5, 31)
UTC_OFFSET = datetime.timedelta(hours=7)  # loans are stored in UTC (services._now)
CHUNK_LOANS = 400_000

# Mean loans per reader and year before busy copies and full limits refuse some (about 15 %).
LOANS_PER_YEAR = {"preschool": 8.5, "primary": 25, "lower_secondary": 23,
                  "upper_secondary": 16, "teacher": 21, "staff": 6}
READER_SPREAD = 1.4  # gamma shape: smaller = more difference between readers
# What each kind of reader borrows (document type code, weight).
DOC_MIX = {
    "preschool": [("STN", 0.9), ("STK", 0.1)],
    "primary": [("STN", 0.6), ("STK", 0.4)],
    "lower_secondary": [("STN", 0.3), ("STK", 0.7)],
    "upper_secondary": [("STN", 0.12), ("STK", 0.88)],
    "teacher": [("SNV", 0.45), ("STK", 0.35), ("SGK", 0.1), ("STN", 0.1)],
    "staff": [("STK", 0.6), ("STN", 0.3), ("SNV", 0.1)],
}
TEXTBOOK_SET_SHARE = 0.08  # students who borrow their grade's textbooks for the year
POPULARITY = 2.0  # copy picked at int(n * u ** POPULARITY) in a shuffled pool
TRIES = 8  # copies tried before the reader leaves without a book
CANCELLED, NEVER_BACK, LATE, RENEWED = 0.002, 0.01, 0.15, 0.05
# Library traffic per month and on Saturdays.
MONTH_WEIGHT = {9: 0.7, 10: 1.1, 11: 1.1, 12: 0.9, 1: 0.7, 2: 0.8, 3: 1.0, 4: 1.3, 5: 0.5}
SATURDAY_WEIGHT = 0.5
LAST_WEEKS = (14, 0.15)  # the last days of the year: books are being collected back
HOURS = [(7, 1), (8, 1), (9, 3), (10, 2), (11, 1), (13, 1), (14, 2), (15, 2), (16, 1)]
SATURDAYS_CLOSED = {"MN": 0.9, "TH": 0.8, "THCS": 0.4, "THPT": 0.3, "MULTI": 0.5}
SGK_GRADE = re.compile(r" (\d{1,2})(?:\. Tập \d)?$")  # "Toán 6. Tập 1", "Bài tập Toán 6"
LOAN_COLUMNS = ("school_id", "copy_id", "reader_id", "kind", "status", "class_name",
                "loaned_at", "due_on", "returned_at", "renewals", "loaned_by_id",
                "returned_by_id")
NEVER = 10 ** 6  # day offset of a copy that will not come back


def school_settings(code, category, seed):
    """A school's circulation settings (pure): Saturdays, fines."""
    rng = random.Random(f"circulation:{seed}:{code}:settings")
    fines = rng.random() < 0.03
    return {"closed_on_sundays": True,
            "closed_on_saturdays": rng.random() < SATURDAYS_CLOSED[category],
            "hold_days": 3, "fines_enabled": fines, "fine_per_day": 1000 if fines else 0,
            "undo_minutes": 10}


class Calendar:
    """Open days of a library from the first day of the year (offsets from `start`)."""

    def __init__(self, start, end, until, closed, saturdays_closed):
        self.start, self.until = start, (until - start).days
        horizon = (end - start).days + 400  # room for due dates and late returns
        is_open = []
        for i in range(horizon):
            day = start + datetime.timedelta(days=i)
            is_open.append(not (day in closed or day.weekday() == 6
                                or (saturdays_closed and day.weekday() == 5)))
        self._next = [0] * horizon
        nxt = horizon - 1
        for i in range(horizon - 1, -1, -1):
            if is_open[i]:
                nxt = i
            self._next[i] = nxt
        self.days = [i for i in range(min(self.until, (end - start).days) + 1) if is_open[i]]
        last = (end - start).days - LAST_WEEKS[0]
        weights = [MONTH_WEIGHT.get((start + datetime.timedelta(days=i)).month, 1.0)
                   * (SATURDAY_WEIGHT if (start + datetime.timedelta(days=i)).weekday() == 5
                      else 1.0) * (LAST_WEEKS[1] if i > last else 1.0) for i in self.days]
        self.cum = list(itertools.accumulate(weights))
        self.end = self.next_open((end - start).days)

    def next_open(self, offset):
        """The offset itself if the library is open that day, otherwise the next open day."""
        return self._next[min(offset, len(self._next) - 1)]

    def date(self, offset):
        return self.start + datetime.timedelta(days=offset)


class _Context:
    """Everything the plans of all schools share (read-only while planning)."""

    def __init__(self, session, seed, until):
        self.seed, self.until = seed, until
        year = session.execute(select(SchoolYear).where(
            SchoolYear.starts_on <= YEAR_START + datetime.timedelta(days=30),
            SchoolYear.ends_on >= YEAR_START + datetime.timedelta(days=30))).scalars().first()
        self.start = year.starts_on if year else YEAR_START
        self.end = year.ends_on if year else YEAR_END
        if not self.start <= until:
            raise ValidationError(_l("The loans must end after the start of the school year."))
        closed = set(session.execute(select(ClosedDay.day).where(
            ClosedDay.school_id.is_(None), ClosedDay.day >= self.start)).scalars())
        if not closed:  # a database without the demo city: the city's usual holidays
            from app.readers.demo import CITY_CLOSED_DAYS

            closed = {datetime.date(*d) for d, _n in CITY_CLOSED_DAYS}
        self.calendars = {sat: Calendar(self.start, self.end, until, closed, sat)
                          for sat in (False, True)}
        docs = dict(session.execute(select(DocumentType.id, DocumentType.code)).all())
        self.docs = docs
        self.sgk = next((i for i, c in docs.items() if c == "SGK"), None)
        categories = dict(session.execute(select(ReaderCategory.id, ReaderCategory.code)).all())
        self.categories = categories
        rules = session.scalars(select(LoanRule).where(LoanRule.school_id.is_(None))).all()
        # (category id, document code) -> (rule id, days, until year end, max, renewal days)
        self.rules = {}
        for cat in categories:
            for doc_id, doc in docs.items():
                rule = policies.pick_rule(rules, cat, doc_id)
                if rule is not None and not rule.reading_room_only and rule.max_items:
                    self.rules[(cat, doc)] = (
                        rule.id, rule.loan_days or 14, rule.until_year_end, rule.max_items,
                        (rule.renewal_days or rule.loan_days or 14) if rule.renewals else 0)


def _profile(category, grade):
    if category == "GV":
        return "teacher"
    if category != "HS":
        return "staff"
    if grade is None:
        return "preschool"
    return ("primary" if grade <= 5 else "lower_secondary" if grade <= 9
            else "upper_secondary")


def _stamp(cal, offset, rng, after=None):
    """A local time on that day, stored in UTC, later than `after` (same day) if given."""
    hour = rng.choices(*zip(*HOURS))[0]
    moment = datetime.datetime.combine(cal.date(offset), datetime.time(
        hour, rng.randrange(60), rng.randrange(60))) - UTC_OFFSET
    if after is not None and moment <= after:
        moment = after + datetime.timedelta(minutes=rng.randint(1, 5))
    return moment


def plan_school_loans(code, category, school_id, librarian, readers, copies, ctx):
    """One school's loans (pure): (loan rows in LOAN_COLUMNS order, ids of the copies left
    on loan, figures). `readers`: (id, category id, grade, class name, status) in id order;
    `copies`: (id, record id, document type id, title of a textbook) of the available copies
    in id order."""
    seed = ctx.seed
    rng = random.Random(f"circulation:{seed}:{code}")
    settings = school_settings(code, category, seed)
    cal = ctx.calendars[settings["closed_on_saturdays"]]
    until = cal.until
    year_end = cal.end
    pools, textbooks = {}, {}  # doc -> [copy index]; grade -> {record id: [copy index]}
    for j, (_id, record_id, doc_id, title) in enumerate(copies):
        doc = ctx.docs.get(doc_id)
        pools.setdefault(doc, []).append(j)
        if doc == "SGK" and title:
            match = SGK_GRADE.search(title)
            if match:
                textbooks.setdefault(int(match.group(1)), {}).setdefault(record_id, []).append(j)
    for pool in pools.values():
        rng.shuffle(pool)
    free = [0] * len(copies)  # day offset from which each copy is on the shelf
    stats = dict(loans=0, open=0, overdue=0, returned=0, cancelled=0, renewed=0,
                 textbook_loans=0, refused_busy=0, refused_limit=0)
    # Who comes when: (day, order in the day, reader index, textbook set?).
    events = []
    first_days = cal.days[:10]
    for i, (_rid, cat, grade, _cls, _status) in enumerate(readers):
        profile = _profile(ctx.categories.get(cat), grade)
        mean = LOANS_PER_YEAR[profile]
        n = int(rng.gammavariate(READER_SPREAD, mean / READER_SPREAD) + 0.5)
        for day in rng.choices(cal.days, cum_weights=cal.cum, k=n) if cal.days else ():
            events.append((day, rng.random(), i, False))
        if (profile in ("primary", "lower_secondary", "upper_secondary") and first_days
                and grade in textbooks and rng.random() < TEXTBOOK_SET_SHARE):
            events.append((rng.choice(first_days), rng.random(), i, True))
    events.sort()
    mixes = {p: (tuple(d for d, _w in mix), tuple(itertools.accumulate(w for _d, w in mix)))
             for p, mix in DOC_MIX.items()}
    holding = [[] for _r in readers]  # per reader: [(return day or NEVER, rule id)]
    rows, on_loan = [], []

    def lend(i, j, day, rule, textbook):
        rid, cat, _grade, class_name, status = readers[i]
        rule_id, days, year_long, _max, renewal_days = rule
        renewals = 0
        if year_long:
            due = year_end
        else:
            due = cal.next_open(day + days)
            if renewal_days and rng.random() < RENEWED:
                renewals, due = 1, cal.next_open(due + renewal_days)
        loaned_at = _stamp(cal, day, rng)
        r = rng.random()
        back = None  # day offset of the return; None = not back by `until`
        if r < CANCELLED:
            state, back = "cancelled", day
        elif r < CANCELLED + NEVER_BACK and status == "active":
            state = "active"
        elif textbook:  # the last two weeks of May, a few earlier
            state = "returned"
            if r < 0.1:
                back = cal.next_open(rng.randint(day + 1, max(day + 1, year_end - 1)))
            else:
                back = cal.next_open(max(day + 1, year_end - rng.randint(1, 14)))
        elif r < CANCELLED + NEVER_BACK + LATE:
            state, back = "returned", cal.next_open(due + rng.randint(1, 30))
        else:
            state = "returned"
            back = cal.next_open(day + max(1, round(rng.triangular(1, max(1, due - day),
                                                                   0.7 * (due - day)))))
        if back is not None and back > until:
            state, back = "active", None
        returned_at = None
        if state == "cancelled":
            returned_at = loaned_at + datetime.timedelta(minutes=rng.randint(1, 9))
            stats["cancelled"] += 1
        elif back is not None:
            returned_at = _stamp(cal, back, rng, after=loaned_at)
            stats["returned"] += 1
        else:
            stats["open"] += 1
            stats["overdue"] += due < until
            on_loan.append(copies[j][0])
        stats["renewed"] += renewals
        stats["textbook_loans"] += textbook
        free[j] = NEVER if back is None else back + 1
        holding[i].append((NEVER if back is None else back, rule_id))
        # Text in SQLAlchemy's storage format: the same rows serve COPY and SQLite.
        rows.append((school_id, copies[j][0], rid, "home", state, class_name,
                     f"{loaned_at:%Y-%m-%d %H:%M:%S}.000000", cal.date(due).isoformat(),
                     f"{returned_at:%Y-%m-%d %H:%M:%S}.000000" if returned_at else None,
                     renewals, librarian, librarian if state == "returned" else None))
        stats["loans"] += 1

    def room(i, day, rule):
        """May reader i borrow one more item under this rule today?"""
        held = holding[i]
        if len(held) > 8:
            held[:] = [h for h in held if h[0] > day]
        return sum(1 for back, rule_id in held if back > day and rule_id == rule[0]) < rule[3]

    for day, _order, i, textbook in events:
        cat = readers[i][1]
        if textbook:
            rule = ctx.rules.get((cat, "SGK"))
            if rule is None:
                continue
            for record_id in sorted(textbooks[readers[i][2]]):
                if not room(i, day, rule):
                    break
                j = next((j for j in textbooks[readers[i][2]][record_id] if free[j] <= day),
                         None)
                if j is None:
                    stats["refused_busy"] += 1
                    continue
                lend(i, j, day, rule, True)
            continue
        docs, cum = mixes[_profile(ctx.categories.get(cat), readers[i][2])]
        doc = rng.choices(docs, cum_weights=cum)[0]
        pool = pools.get(doc) or pools.get("STK") or pools.get("STN")
        rule = ctx.rules.get((cat, doc if pools.get(doc) else "STK"))
        if not pool or rule is None:
            continue
        if not room(i, day, rule):
            stats["refused_limit"] += 1
            continue
        n = len(pool)
        for _try in range(TRIES):
            j = pool[int(n * rng.random() ** POPULARITY)]
            if free[j] <= day:
                lend(i, j, day, rule, False)
                break
        else:
            stats["refused_busy"] += 1
    rows.sort(key=lambda row: row[6])  # the register in time order
    return rows, on_loan, settings, stats


def _load_chunk(session, entries, units):
    """Readers and available copies of a chunk of schools, grouped by school."""
    ids = [units[e["code"]] for e in entries]
    readers, copies = {i: [] for i in ids}, {i: [] for i in ids}
    for row in session.execute(select(
            Reader.school_id, Reader.id, Reader.category_id, Reader.grade, Reader.class_name,
            Reader.status).where(Reader.school_id.in_(ids)).order_by(Reader.id)):
        readers[row[0]].append((row[1], row[2], row[3], row[4], row[5].name))
    sgk = select(DocumentType.id).where(DocumentType.code == "SGK").scalar_subquery()
    for row in session.execute(select(
            Copy.school_id, Copy.id, Copy.record_id, Record.document_type_id,
            case((Record.document_type_id == sgk, Record.title))).join(
            Record, Record.id == Copy.record_id).where(
            Copy.school_id.in_(ids), Copy.status == CopyStatus.available).order_by(Copy.id)):
        copies[row[0]].append((row[1], row[2], row[3], row[4]))
    return readers, copies


def generate_circulation(session, scale=0.01, seed=1, volume=1.0, until=YEAR_END,
                         progress=None, commit=True, chunk_loans=CHUNK_LOANS):
    """Write the generated schools' circulation settings and loans (module docstring).

    The city, its catalogue and its readers (same scale, seed and volume) must be in the
    database. One transaction per chunk of schools (about `chunk_loans` loans);
    `progress(stats)` after each. Returns the figures written.
    """
    started = time.perf_counter()
    plan = plan_readers(scale, seed, volume)
    units = _units(session, [s["code"] for s in plan["schools"]])
    done = _with_rows(session, CirculationSettings, units.values())
    todo = [s for s in plan["schools"] if units[s["code"]] not in done]
    for model, what in ((LibrarySettings, _l("the catalogue")), (Reader, _l("the readers"))):
        have = _with_rows(session, model, [units[s["code"]] for s in todo])
        missing = [s["code"] for s in todo if units[s["code"]] not in have]
        if missing:
            raise ValidationError(
                _l("The school %(code)s has no data of %(what)s yet: generate %(what)s with "
                   "the same scale and seed first."), code=missing[0], what=what)
    ctx = _Context(session, seed, until)
    librarians = dict(session.execute(select(AppUser.username, AppUser.id).where(
        AppUser.username.in_(["tv" + s["code"] for s in todo]))).all()) if todo else {}
    stats = dict(schools=len(todo), skipped=len(plan["schools"]) - len(todo), schools_done=0,
                 settings=0, loans=0, open=0, overdue=0, returned=0, cancelled=0, renewed=0,
                 textbook_loans=0, refused_busy=0, refused_limit=0, copies_on_loan=0)
    chunks, size = [[]], 0
    for entry in todo:
        if size >= chunk_loans:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += entry["students"] * 20 + entry["teachers"] * 20
    chunks = [c for c in chunks if c]
    writer = _Writer(session)
    # Fresh statistics for the foreign-key checks of the loans (see _Writer.analyze).
    writer.analyze({"reader": 1, "copy": 1})

    def plan_chunk(entries, readers, copies):
        out = []
        for e in entries:
            sid = units[e["code"]]
            out.append((sid,) + plan_school_loans(
                e["code"], e["category"], sid, librarians.get("tv" + e["code"]),
                readers[sid], copies[sid], ctx))
        return out

    # The next chunk is planned in a thread while the database writes this one.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        ahead = None
        try:
            if chunks:
                ahead = pool.submit(plan_chunk, chunks[0], *_load_chunk(session, chunks[0],
                                                                        units))
            for i in range(len(chunks)):
                plans = ahead.result()
                if i + 1 < len(chunks):
                    ahead = pool.submit(plan_chunk, chunks[i + 1],
                                        *_load_chunk(session, chunks[i + 1], units))
                _write_chunk(session, writer, plans, stats)
                stats["schools_done"] += len(chunks[i])
                if commit:
                    session.commit()
                stats["seconds"] = round(time.perf_counter() - started, 1)
                if progress:
                    progress(dict(stats))
        except BaseException:
            if ahead is not None:
                ahead.cancel()
            session.rollback()
            raise
    stats["seconds"] = round(time.perf_counter() - started, 1)
    return stats


def _write_chunk(session, writer, plans, stats):
    session.execute(CirculationSettings.__table__.insert(), [
        dict(school_id=sid, **settings) for sid, _rows, _open, settings, _s in plans])
    stats["settings"] += len(plans)
    rows = [row for _sid, school_rows, _o, _st, _s in plans for row in school_rows]
    writer.rows("loan", LOAN_COLUMNS, rows)
    on_loan = sorted(c for _sid, _r, school_open, _st, _s in plans for c in school_open)
    copy_t = Copy.__table__
    for i in range(0, len(on_loan), 5000):
        session.execute(update(copy_t).where(copy_t.c.id.in_(on_loan[i:i + 5000]))
                        .values(status=CopyStatus.on_loan.name))
    stats["copies_on_loan"] += len(on_loan)
    for _sid, _r, _o, _st, school in plans:
        for key, value in school.items():
            stats[key] += value
    session.flush()
