"""City-scale readers for the generated schools, deterministic (for load tests).

Runs after `app.catalog.generator.generate_catalogue` on the same (scale, seed), on the
generated schools only. Per school: students by grade and class (classes of about 35–40,
25–32 in preschools), then teachers and staff (about 4 % of the readers), with Vietnamese
names, dates of birth, card numbers and barcodes unique in the school, as the school year
2025–2026 left them (the class a student was in that year).

At scale 1.0: about 2.5 million students (MN 0.48 M, TH 0.94 M, THCS 0.76 M, THPT 0.35 M,
the city's 2025–26 figures) and about 0.1 million teachers and staff. A school's size follows
its library's (`plan_catalogue`): a large library belongs to a large school.

- `plan_readers(scale, seed, volume)`: how many readers each school has (pure data, cheap).
- `plan_school_readers(entry, seed)`: one school's readers as rows (pure data).
- `generate_readers(session, scale, seed)`: writes them, a chunk of schools per transaction
  (PostgreSQL: COPY; SQLite: executemany). Schools that already have readers are skipped, so
  an interrupted run resumes with the same arguments. Not in the audit log, like the city.

Codes follow the demo readers: student code = school code + serial ("7910000000012"), card
"HS00012", barcode = school code + card ("79100000HS00012"); teachers "GV001", staff "NV001".
"""
import datetime
import functools
import random
import time

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.catalog.generator import MEAN_RECORDS, NON_PUBLIC_FACTOR as LIBRARY_NON_PUBLIC, \
    _Writer, plan_catalogue
from app.core.errors import ValidationError
from app.core.i18n import collation_key
from app.org.generator import FAMILY_NAMES, GIVEN_F, GIVEN_M, MIDDLE_F, MIDDLE_M
from app.org.models import OrgUnit
from app.readers.models import Reader, ReaderCategory

YEAR_END = datetime.date(2026, 5, 31)  # school year 2025–2026
# Students per school and level at volume 1.0 (public school): the city's 2025–26 enrolment
# (scale.md) over its schools. Non-public and multi-level schools have fewer per level.
MEAN_STUDENTS = {"preschool": 345, "primary": 1080, "lower_secondary": 1410,
                 "upper_secondary": 1305}
NON_PUBLIC_FACTOR = 0.6
MULTI_LEVEL_FACTOR = 0.5
CLASS_SIZE = {"preschool": (25, 32)}  # others (35, 40)
TEACHER_SHARE = {"preschool": 0.08}  # others 0.035; staff 1 %
STAFF_SHARE = 0.01
LEFT_SHARE, SUSPENDED_SHARE = 0.005, 0.002
CHUNK_READERS = 100_000

# Preschool groups: (name, share of the children, year of birth).
PRESCHOOL_GROUPS = [("Nhà trẻ", 0.10, 2023), ("Mầm", 0.28, 2022), ("Chồi", 0.30, 2021),
                    ("Lá", 0.32, 2020)]
GRADES = {"primary": (1, 2, 3, 4, 5), "lower_secondary": (6, 7, 8, 9),
          "upper_secondary": (10, 11, 12)}
# Children's names are more modern than their teachers'.
KID_MIDDLE_F = [("Ngọc", 10), ("Bảo", 8), ("Khánh", 6), ("Gia", 6), ("Minh", 5), ("Thảo", 4),
                ("Phương", 4), ("Thị", 6), ("Hoàng", 3), ("Tường", 2), ("Như", 3), ("Mai", 3),
                ("Thùy", 3), ("Ánh", 2), ("Kim", 2), ("Thanh", 3), ("An", 2), ("Tuệ", 2)]
KID_MIDDLE_M = [("Gia", 10), ("Minh", 10), ("Hoàng", 6), ("Đức", 5), ("Quốc", 5), ("Anh", 5),
                ("Bảo", 6), ("Nhật", 4), ("Thanh", 3), ("Văn", 4), ("Tuấn", 3), ("Đăng", 3),
                ("Trung", 2), ("Hữu", 2), ("Thiên", 2), ("Phúc", 2), ("Khánh", 3)]
KID_GIVEN_F = ["An", "Anh", "Vy", "Nhi", "Hân", "Ngân", "Linh", "Thư", "My", "Trâm", "Như",
               "Quỳnh", "Chi", "Hà", "Uyên", "Khuê", "Tâm", "Thảo", "Ngọc", "Trúc", "Yến",
               "Hương", "Diệp", "Phương", "Giang", "Châu", "Mai", "Tiên", "Hạnh", "Lam",
               "Nghi", "Hằng", "Trang", "Đan", "Tú"]
KID_GIVEN_M = ["Khôi", "Phúc", "Huy", "Khang", "Bảo", "Minh", "Nam", "Long", "Quân", "Khoa",
               "Duy", "Hưng", "Đạt", "Phát", "Thịnh", "Kiệt", "Tín", "Trí", "Nhân", "Vinh",
               "Lâm", "Sơn", "Tùng", "Hải", "Tuấn", "Thiện", "Lộc", "An", "Hoàng", "Đăng",
               "Khải", "Nguyên", "Quang", "Thành", "Vũ"]
COLUMNS = ("school_id", "category_id", "code", "family_name", "given_name", "class_name",
           "grade", "date_of_birth", "gender", "phone", "card_number", "barcode",
           "valid_until", "status")


def _levels_of(entry):
    return [lvl for lvl in ("preschool", "primary", "lower_secondary", "upper_secondary")
            if lvl in entry["levels"]]


def plan_readers(scale=0.01, seed=1, volume=1.0):
    """How many readers each generated school has: pure data, no database.

    Returns {'schools': [{'code', 'category', 'levels', 'is_public', 'groups':
    [(level, grade or preschool group, students)], 'students', 'teachers', 'staff'}],
    'students', 'teachers', 'staff'}. `volume` multiplies every school (tests use a small one).
    """
    if volume <= 0:
        raise ValidationError(_l("The volume must be greater than 0."), field="volume")
    schools = []
    for s in plan_catalogue(scale, seed)["schools"]:
        rng = random.Random(f"readers:{seed}:{s['code']}:size")
        # The library's size relative to its category's mean: the school's size.
        mean_records = MEAN_RECORDS[s["category"]] * (1.0 if s["is_public"]
                                                      else LIBRARY_NON_PUBLIC)
        spread = min(2.5, max(0.4, s["records"] / mean_records))
        factor = spread * volume * (1.0 if s["is_public"] else NON_PUBLIC_FACTOR) * (
            MULTI_LEVEL_FACTOR if len(s["levels"]) > 1 else 1.0)
        groups = []
        for level in _levels_of(s):
            total = MEAN_STUDENTS[level] * factor
            if level == "preschool":
                parts = [(name, share) for name, share, _y in PRESCHOOL_GROUPS]
            else:
                parts = [(g, 1 / len(GRADES[level])) for g in GRADES[level]]
            for key, share in parts:
                n = int(round(total * share * rng.uniform(0.92, 1.08)))
                if n:
                    groups.append((level, key, n))
        if not groups:  # a tiny volume: still one class
            groups.append((_levels_of(s)[0], "Lá" if s["levels"][0] == "preschool"
                           else GRADES[_levels_of(s)[0]][0], 1))
        students = sum(n for _l, _k, n in groups)
        share = max(TEACHER_SHARE.get(lvl, 0.035) for lvl in _levels_of(s))
        schools.append({"code": s["code"], "category": s["category"],
                        "levels": tuple(s["levels"]), "is_public": s["is_public"],
                        "groups": groups, "students": students,
                        "teachers": max(2, int(round(students * share))),
                        "staff": max(1, int(round(students * STAFF_SHARE)))})
    return {"scale": scale, "seed": seed, "volume": volume, "schools": schools,
            "students": sum(s["students"] for s in schools),
            "teachers": sum(s["teachers"] for s in schools),
            "staff": sum(s["staff"] for s in schools)}


def _weighted(rng, pairs):
    values, weights = zip(*pairs)
    return rng.choices(values, weights=weights, k=1)[0]


@functools.lru_cache(maxsize=None)  # a few thousand names and name parts
def _key(text):
    return collation_key(text)


def _kid(rng, female):
    family = _weighted(rng, FAMILY_NAMES)
    middle = _weighted(rng, KID_MIDDLE_F if female else KID_MIDDLE_M)
    if rng.random() < 0.12:  # Nguyễn Ngọc Bảo Anh
        second = _weighted(rng, KID_MIDDLE_F if female else KID_MIDDLE_M)
        if second != middle:
            middle = f"{middle} {second}"
    return f"{family} {middle}", rng.choice(KID_GIVEN_F if female else KID_GIVEN_M)


def _adult(rng, female):
    family = _weighted(rng, FAMILY_NAMES)
    middle = _weighted(rng, MIDDLE_F if female else MIDDLE_M)
    return f"{family} {middle}", rng.choice(GIVEN_F if female else GIVEN_M)


def _class_names(rng, level, key, count):
    """Names of the classes of one grade: 6A1, 6/1, 1A, Lá 2... (a school keeps one style)."""
    if level == "preschool":
        return [f"{key} {i}" for i in range(1, count + 1)]
    style = rng.random()
    if level == "primary":
        return ([f"{key}/{i}" for i in range(1, count + 1)] if style < 0.5
                else [f"{key}{chr(64 + i)}" for i in range(1, count + 1)])
    return ([f"{key}/{i}" for i in range(1, count + 1)] if style < 0.4
            else [f"{key}A{i}" for i in range(1, count + 1)])


def plan_school_readers(entry, seed):
    """One school's readers as tuples in COLUMNS order without school_id and category_id,
    each preceded by its category code: ('HS' | 'GV' | 'CBNV', code, family, given, ...).

    Students come class by class, each class in Vietnamese alphabetical order (given name
    first), numbered 1, 2, 3... in the school; then teachers, then staff.
    """
    rng = random.Random(f"readers:{seed}:{entry['code']}")
    code = entry["code"]
    rows, serial = [], 0
    last_grade = max((g for lvl in _levels_of(entry) if lvl in GRADES for g in GRADES[lvl]),
                     default=0)
    for level, key, n in entry["groups"]:
        size = rng.uniform(*CLASS_SIZE.get(level, (35, 40)))
        count = max(1, int(round(n / size)))
        # Same generator for every grade of a level: one naming style per level and school.
        names = _class_names(random.Random(f"readers:{seed}:{code}:{level}"), level, key, count)
        if level == "preschool":
            born = next(y for name, _s, y in PRESCHOOL_GROUPS if name == key)
            grade = None
            graduates = 2026 + [g[0] for g in PRESCHOOL_GROUPS][::-1].index(key)
        else:
            born, grade = 2020 - key, key  # grade 1 in 2025–26: born in 2019
            graduates = 2026 + last_grade - key
        for c, class_name in enumerate(names):
            size_c = n // count + (1 if c < n % count else 0)
            pupils = []
            for _i in range(size_c):
                female = rng.random() < 0.49
                family, given = _kid(rng, female)
                year = born - (1 if rng.random() < 0.03 else 0)
                dob = datetime.date(year, 1, 1) + datetime.timedelta(days=rng.randrange(365))
                pupils.append((family, given, female, dob))
            pupils.sort(key=lambda p: (_key(p[1]), _key(p[0])))
            for family, given, female, dob in pupils:
                serial += 1
                r = rng.random()
                status = ("left" if r < LEFT_SHARE else
                          "suspended" if r < LEFT_SHARE + SUSPENDED_SHARE else "active")
                card = f"HS{serial:05d}"
                rows.append(("HS", f"{code}{serial:05d}", family, given, class_name, grade,
                             dob.isoformat(), "female" if female else "male", None, card,
                             code + card, datetime.date(graduates, 5, 31).isoformat(), status))
    for prefix, category, count, female_share in (
            ("GV", "GV", entry["teachers"],
             0.95 if entry["levels"] == ("preschool",) else 0.72),
            ("NV", "CBNV", entry["staff"], 0.6)):
        for j in range(1, count + 1):
            female = rng.random() < female_share
            family, given = _adult(rng, female)
            dob = datetime.date(rng.randint(1966, 2002), 1, 1) + datetime.timedelta(
                days=rng.randrange(365))
            phone = f"09{rng.randrange(10 ** 8):08d}" if rng.random() < 0.7 else None
            card = f"{prefix}{j:03d}"
            status = "left" if rng.random() < 0.01 else "active"
            rows.append((category, f"{prefix}{code}{j:03d}", family, given, None, None,
                         dob.isoformat(), "female" if female else "male", phone, card,
                         code + card, None, status))
    return rows


def _units(session, codes):
    units = {}
    for i in range(0, len(codes), 500):
        units.update(session.execute(select(OrgUnit.code, OrgUnit.id).where(
            OrgUnit.code.in_(codes[i:i + 500]))).all())
    missing = [c for c in codes if c not in units]
    if missing:
        raise ValidationError(
            _l("The generated city is not in this database (the school %(code)s is missing): "
               "generate the city with the same scale and seed first."), code=missing[0])
    return units


def _with_rows(session, model, school_ids):
    found, ids = set(), sorted(school_ids)
    for i in range(0, len(ids), 500):
        found.update(session.execute(select(model.school_id).where(
            model.school_id.in_(ids[i:i + 500])).distinct()).scalars())
    return found


def generate_readers(session, scale=0.01, seed=1, volume=1.0, progress=None, commit=True,
                     chunk_readers=CHUNK_READERS):
    """Write the generated schools' readers (see the module docstring); returns the figures.

    One transaction per chunk of schools (about `chunk_readers` readers); `progress(stats)`
    after each. With commit=False the caller commits.
    """
    started = time.perf_counter()
    plan = plan_readers(scale, seed, volume)
    units = _units(session, [s["code"] for s in plan["schools"]])
    categories = dict(session.execute(select(ReaderCategory.code, ReaderCategory.id)).all())
    done = _with_rows(session, Reader, units.values())
    todo = [s for s in plan["schools"] if units[s["code"]] not in done]
    stats = {"schools": len(todo), "skipped": len(plan["schools"]) - len(todo),
             "schools_done": 0, "readers": 0, "students": 0, "teachers": 0, "staff": 0}
    writer = _Writer(session)
    chunks, size = [[]], 0
    for entry in todo:
        if size >= chunk_readers:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += entry["students"] + entry["teachers"] + entry["staff"]
    try:
        for chunk in (c for c in chunks if c):
            rows = []
            for entry in chunk:
                sid = units[entry["code"]]
                for row in plan_school_readers(entry, seed):
                    rows.append((sid, categories[row[0]]) + row[1:])
                    stats[{"HS": "students", "GV": "teachers", "CBNV": "staff"}[row[0]]] += 1
            writer.rows("reader", COLUMNS, rows)
            stats["readers"] += len(rows)
            stats["schools_done"] += len(chunk)
            if commit:
                session.commit()
            stats["seconds"] = round(time.perf_counter() - started, 1)
            if progress:
                progress(dict(stats))
        # Fresh statistics: the loans' foreign-key checks plan their lookups on them.
        writer.analyze({"reader": stats["readers"]})
        if commit:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    stats["seconds"] = round(time.perf_counter() - started, 1)
    return stats
