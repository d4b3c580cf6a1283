"""Demo readers, loans and the city's closed days (part of the demo city, app.org.demo)."""
import datetime

from sqlalchemy import select

from app.circulation.models import CirculationSettings, ClosedDay

# The city's holidays (set by the department): school years 2025–2026 and 2026–2027.
CITY_CLOSED_DAYS = [
    ((2025, 9, 1), "Quốc khánh"), ((2025, 9, 2), "Quốc khánh"),
    ((2026, 1, 1), "Tết Dương lịch"),
    *[((2026, 2, d), "Tết Nguyên đán Bính Ngọ") for d in range(14, 23)],
    ((2026, 4, 26), "Giỗ Tổ Hùng Vương"), ((2026, 4, 27), "Nghỉ bù Giỗ Tổ Hùng Vương"),
    ((2026, 4, 30), "Ngày Giải phóng miền Nam"), ((2026, 5, 1), "Quốc tế Lao động"),
    ((2026, 9, 1), "Quốc khánh"), ((2026, 9, 2), "Quốc khánh"),
    ((2027, 1, 1), "Tết Dương lịch"),
    *[((2027, 2, d), "Tết Nguyên đán Đinh Mùi") for d in range(4, 12)],
]

FAMILY = ["Nguyễn Văn", "Trần Thị", "Lê Hoàng", "Phạm Minh", "Hoàng Thị", "Huỳnh Gia",
          "Võ Thanh", "Đặng Ngọc", "Bùi Quốc", "Đỗ Thị", "Hồ Anh", "Ngô Bảo"]
GIVEN = ["An", "Bình", "Châu", "Dũng", "Đạt", "Giang", "Hà", "Khánh", "Linh", "Minh",
         "Ngọc", "Phúc", "Quân", "Thảo", "Trâm", "Uyên", "Vy", "Yến"]
CLASSES = {"79000001": ["6A1", "6A2", "7A1", "8A1", "9A1"], "79000002": ["6A1", "9A1"]}
TEACHERS = [("Bùi Thanh", "Tâm", "giaovien"), ("Trương Mỹ", "Lệ", None),
            ("Cao Văn", "Sơn", None)]


def load_demo_readers(session, schools):
    from app.org.models import AppUser
    from app.readers.models import Gender, Reader, ReaderCategory

    for (y, m, d), name in CITY_CLOSED_DAYS:
        session.add(ClosedDay(school_id=None, day=datetime.date(y, m, d), name=name))
    categories = {c.code: c for c in session.scalars(select(ReaderCategory))}
    users = {u.username: u for u in session.scalars(select(AppUser))}
    valid_until = datetime.date(2027, 5, 31)
    for code, classes in CLASSES.items():
        school = schools[code]
        session.add(CirculationSettings(school=school))
        serial = 0
        for class_name in classes:
            grade = int(class_name[0])
            for i in range(8):
                serial += 1
                family = FAMILY[(serial * 7 + grade) % len(FAMILY)]
                given = GIVEN[(serial * 5 + i) % len(GIVEN)]
                username = "hocsinh" if code == "79000001" and serial == 1 else None
                if username:
                    family, given = "Lý Gia", "Huy"
                session.add(Reader(
                    school=school, category=categories["HS"], code=f"{code}{serial:05d}",
                    family_name=family, given_name=given, class_name=class_name, grade=grade,
                    date_of_birth=datetime.date(2025 - 5 - grade, 1 + serial % 12,
                                                1 + serial % 28),
                    gender=Gender.female if given in ("Hà", "Linh", "Ngọc", "Thảo", "Trâm",
                                                      "Uyên", "Vy", "Yến", "Châu")
                    else Gender.male,
                    card_number=f"HS{serial:05d}", barcode=f"{code}HS{serial:05d}",
                    valid_until=valid_until, user_id=users[username].id if username else None))
        for j, (family, given, username) in enumerate(TEACHERS if code == "79000001"
                                                      else TEACHERS[1:2]):
            session.add(Reader(
                school=school, category=categories["GV"], code=f"GV{code}{j + 1:03d}",
                family_name=family, given_name=given, card_number=f"GV{j + 1:03d}",
                barcode=f"{code}GV{j + 1:03d}", valid_until=valid_until,
                user_id=users[username].id if username and username in users else None))
    session.flush()
