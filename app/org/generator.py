"""A city-scale organisation tree and accounts, generated deterministically (for load tests).

`plan_city(scale, seed)` is pure data (plain dicts, no database): the department's offices
before and after 01/07/2025, the school clusters, the schools with their places in both
periods, and the accounts. `generate_city(session, scale, seed)` writes that plan with bulk
Core inserts in one transaction (`flask --app run generate-city --scale 1.0`).

At scale 1.0 (Ho Chi Minh City after the 2025 merger, /work/shared/reference/scale.md):
about 3,500 schools (MN 1,700, TH 900, THCS 560, THPT 290, about 50 multi-level), about a
third non-public; 22 district offices (Phòng GD&ĐT, until 30/06/2025), 168 ward/commune
offices (Phòng Văn hóa – Xã hội, from 01/07/2025), 16 school clusters (from 01/07/2025).

Simplifications, on purpose:
- Ward names are the post-2025 names, each given one pre-2025 district. The 66 wards of the
  former Bình Dương and Bà Rịa–Vũng Tàu provinces were not under a Phòng GD&ĐT of HCMC before
  01/07/2025; here their schools are placed under a neighbouring HCMC district office so that
  every MN/TH/THCS school has a parent in both periods.
- Clusters group neighbouring wards (in list order); THPT and multi-level schools teaching
  THPT sit directly under the Sở, in no cluster (as in the demo city).
- Codes do not depend on the seed: a database holds at most one generated city.
"""
import datetime
import random

import click
from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, select

from app.core.errors import ValidationError
from app.core.security import ROLE_LIBRARIAN, ROLE_OFFICER, ROLE_PRINCIPAL
from app.org.demo import SCHOOLS as DEMO_SCHOOLS
from app.org.models import FAR_PAST, AppUser, Hierarchy, OrgLink, OrgUnit, UnitKind

REFORM_DAY = datetime.date(2025, 7, 1)  # district offices abolished, ward offices start
LAST_DISTRICT_DAY = REFORM_DAY - datetime.timedelta(days=1)
GENERATED_PASSWORD = "thuvien2025"  # same as the demo accounts
EMAIL_DOMAIN = "gen.thuvien.edu.vn"
SCHOOL_CODE_START = 100000  # school codes "79" + 6 digits: 79100000, 79100001, ...
BATCH = 1000

DEPARTMENT_CODE = "SGD79"
DEPARTMENT_NAME = "Sở Giáo dục và Đào tạo Thành phố Hồ Chí Minh"

# School counts at scale 1.0, and the share of non-public schools per category.
SCHOOLS_AT_FULL_SCALE = {"MN": 1700, "TH": 900, "THCS": 560, "THPT": 290, "MULTI": 50}
NON_PUBLIC_SHARE = {"MN": 0.50, "TH": 0.10, "THCS": 0.07, "THPT": 0.30, "MULTI": 0.80}
DISTRICTS_AT_FULL_SCALE = 22
WARDS_AT_FULL_SCALE = 168
CLUSTERS_AT_FULL_SCALE = 16
MIN_SCHOOLS = 6

LEVELS_OF = {
    "MN": ("preschool",),
    "TH": ("primary",),
    "THCS": ("lower_secondary",),
    "THPT": ("upper_secondary",),
}
# Multi-level schools: levels taught, weight.
MULTI_LEVELS = [
    (("primary", "lower_secondary"), 14),
    (("lower_secondary", "upper_secondary"), 14),
    (("primary", "lower_secondary", "upper_secondary"), 16),
    (("preschool", "primary"), 4),
    (("preschool", "primary", "lower_secondary", "upper_secondary"), 2),
]
LEVEL_ABBR = {"preschool": "MN", "primary": "TH", "lower_secondary": "THCS",
              "upper_secondary": "THPT"}
SINGLE_LEVEL_PREFIX = {"MN": "Trường Mầm non", "TH": "Trường Tiểu học", "THCS": "Trường THCS",
                       "THPT": "Trường THPT"}

# ---------------------------------------------------------------------------------------
# The 22 district-level units of HCMC before 01/07/2025: (number, short code, name).
DISTRICTS = [
    (1, "TĐ", "Thành phố Thủ Đức"), (2, "Q1", "Quận 1"), (3, "Q3", "Quận 3"),
    (4, "Q4", "Quận 4"), (5, "Q5", "Quận 5"), (6, "Q6", "Quận 6"), (7, "Q7", "Quận 7"),
    (8, "Q8", "Quận 8"), (9, "Q10", "Quận 10"), (10, "Q11", "Quận 11"), (11, "Q12", "Quận 12"),
    (12, "BTh", "Quận Bình Thạnh"), (13, "GV", "Quận Gò Vấp"), (14, "PN", "Quận Phú Nhuận"),
    (15, "TB", "Quận Tân Bình"), (16, "TP", "Quận Tân Phú"), (17, "BT", "Quận Bình Tân"),
    (18, "CC", "huyện Củ Chi"), (19, "HM", "huyện Hóc Môn"), (20, "BC", "huyện Bình Chánh"),
    (21, "NB", "huyện Nhà Bè"), (22, "CG", "huyện Cần Giờ"),
]

# The 168 commune-level units from 01/07/2025, by former district (or province for the wards
# of Bình Dương and Bà Rịa–Vũng Tàu, with the neighbouring HCMC district used before 2025).
_P, _X, _DK = "phường", "xã", "đặc khu"
WARDS_BY_DISTRICT = [
    ("Q1", _P, ["Sài Gòn", "Tân Định", "Bến Thành", "Cầu Ông Lãnh"]),
    ("Q3", _P, ["Bàn Cờ", "Xuân Hòa", "Nhiêu Lộc"]),
    ("Q4", _P, ["Xóm Chiếu", "Khánh Hội", "Vĩnh Hội"]),
    ("Q5", _P, ["Chợ Quán", "An Đông", "Chợ Lớn"]),
    ("Q6", _P, ["Bình Tây", "Bình Tiên", "Bình Phú", "Phú Lâm"]),
    ("Q7", _P, ["Tân Thuận", "Phú Thuận", "Tân Mỹ", "Tân Hưng"]),
    ("Q8", _P, ["Chánh Hưng", "Phú Định", "Bình Đông"]),
    ("Q10", _P, ["Diên Hồng", "Vườn Lài", "Hòa Hưng"]),
    ("Q11", _P, ["Minh Phụng", "Bình Thới", "Hòa Bình", "Phú Thọ"]),
    ("Q12", _P, ["Đông Hưng Thuận", "Trung Mỹ Tây", "Tân Thới Hiệp", "Thới An",
                 "An Phú Đông"]),
    ("BT", _P, ["An Lạc", "Tân Tạo", "Bình Tân", "Bình Trị Đông", "Bình Hưng Hòa"]),
    ("BTh", _P, ["Gia Định", "Bình Thạnh", "Bình Lợi Trung", "Thạnh Mỹ Tây", "Bình Quới"]),
    ("GV", _P, ["Hạnh Thông", "An Nhơn", "Gò Vấp", "An Hội Đông", "Thông Tây Hội",
                "An Hội Tây"]),
    ("PN", _P, ["Đức Nhuận", "Cầu Kiệu", "Phú Nhuận"]),
    ("TB", _P, ["Tân Sơn Hòa", "Tân Sơn Nhất", "Tân Hòa", "Bảy Hiền", "Tân Bình", "Tân Sơn"]),
    ("TP", _P, ["Tây Thạnh", "Tân Sơn Nhì", "Phú Thọ Hòa", "Tân Phú", "Phú Thạnh"]),
    ("TĐ", _P, ["Hiệp Bình", "Thủ Đức", "Tam Bình", "Linh Xuân", "Tăng Nhơn Phú", "Long Bình",
                "Long Phước", "Long Trường", "Cát Lái", "Bình Trưng", "Phước Long",
                "An Khánh"]),
    ("BC", _X, ["Vĩnh Lộc", "Tân Vĩnh Lộc", "Bình Lợi", "Tân Nhựt", "Bình Chánh", "Hưng Long",
                "Bình Hưng"]),
    ("CG", _X, ["Bình Khánh", "An Thới Đông", "Cần Giờ", "Thạnh An"]),
    ("CC", _X, ["Củ Chi", "Tân An Hội", "Thái Mỹ", "An Nhơn Tây", "Nhuận Đức", "Phú Hòa Đông",
                "Bình Mỹ"]),
    ("HM", _X, ["Đông Thạnh", "Hóc Môn", "Xuân Thới Sơn", "Bà Điểm"]),
    ("NB", _X, ["Nhà Bè", "Hiệp Phước"]),
    # Former Bình Dương (neighbouring districts: Thủ Đức, Quận 12, Củ Chi, Hóc Môn).
    ("BD", _P, ["Thủ Dầu Một", "Phú Lợi", "Bình Dương", "Phú An", "Chánh Hiệp", "Thuận An",
                "Thuận Giao", "Bình Hòa", "Lái Thiêu", "An Phú", "Dĩ An", "Đông Hòa",
                "Tân Đông Hiệp", "Tân Uyên", "Tân Hiệp", "Tân Khánh", "Vĩnh Tân", "Bình Cơ",
                "Bến Cát", "Chánh Phú Hòa", "Long Nguyên", "Thới Hòa", "Tây Nam", "Hòa Lợi"]),
    ("BD", _X, ["Bắc Tân Uyên", "Thường Tân", "Bàu Bàng", "Trừ Văn Thố", "Phú Giáo",
                "Phước Thành", "Phước Hòa", "An Long", "Dầu Tiếng", "Minh Thạnh", "Long Hòa",
                "Thanh An"]),
    # Former Bà Rịa–Vũng Tàu (neighbouring districts: Cần Giờ, Nhà Bè, Quận 7, Thủ Đức).
    ("VT", _P, ["Vũng Tàu", "Tam Thắng", "Rạch Dừa", "Phước Thắng", "Bà Rịa", "Long Hương",
                "Tam Long", "Phú Mỹ", "Tân Thành", "Tân Phước", "Tân Hải"]),
    ("VT", _X, ["Long Hải", "Long Điền", "Đất Đỏ", "Phước Hải", "Ngãi Giao", "Kim Long",
                "Châu Đức", "Bình Giã", "Xuân Sơn", "Nghĩa Thành", "Hồ Tràm", "Xuyên Mộc",
                "Hòa Hội", "Bàu Lâm", "Bình Châu", "Hòa Hiệp", "Châu Pha", "Long Sơn"]),
    ("VT", _DK, ["Côn Đảo"]),
]
NEIGHBOUR_DISTRICTS = {"BD": ["TĐ", "Q12", "CC", "HM"], "VT": ["CG", "NB", "Q7", "TĐ"]}
PHONE_AREA = {"BD": "0274", "VT": "0254"}  # HCMC: 028

# Names of schools and streets.
PEOPLE = [
    "Lê Văn Tám", "Kim Đồng", "Võ Thị Sáu", "Nguyễn Bỉnh Khiêm", "Trần Hưng Đạo", "Lê Lợi",
    "Quang Trung", "Nguyễn Trãi", "Chu Văn An", "Lý Thường Kiệt", "Hai Bà Trưng", "Bà Triệu",
    "Đinh Tiên Hoàng", "Lê Quý Đôn", "Nguyễn Du", "Nguyễn Đình Chiểu", "Trương Định",
    "Phan Bội Châu", "Phan Chu Trinh", "Nguyễn Thái Học", "Nguyễn Văn Trỗi", "Lê Thị Riêng",
    "Nguyễn Thị Minh Khai", "Võ Văn Tần", "Nguyễn Huệ", "Lê Lai", "Ngô Quyền",
    "Trần Quốc Toản", "Trần Quang Khải", "Lý Tự Trọng", "Nguyễn Khuyến", "Hồ Xuân Hương",
    "Đoàn Thị Điểm", "Lương Thế Vinh", "Trần Đại Nghĩa", "Lê Hồng Phong", "Nguyễn An Ninh",
    "Hoàng Hoa Thám", "Phan Đình Phùng", "Nguyễn Tri Phương", "Trần Phú", "Nguyễn Văn Cừ",
    "Hà Huy Tập", "Tôn Đức Thắng", "Nguyễn Hữu Cảnh", "Trịnh Hoài Đức", "Võ Trường Toản",
    "Nguyễn Trung Trực", "Thủ Khoa Huân", "Trương Vĩnh Ký", "Huỳnh Thúc Kháng", "Phan Văn Trị",
    "Bùi Thị Xuân", "Nguyễn Văn Tố", "Mạc Đĩnh Chi", "Tô Hiến Thành", "Yết Kiêu",
    "Phạm Ngũ Lão", "Trần Nhân Tông", "Lý Công Uẩn", "Lê Thánh Tông", "Nguyễn Thượng Hiền",
    "Tản Đà", "Trần Văn Ơn", "Lê Anh Xuân", "Nguyễn Thị Định", "Nguyễn Hiền", "Cao Bá Quát",
    "Nguyễn Chí Thanh", "Trần Văn Giàu", "Lê Quang Định", "Trần Quốc Tuấn", "Phan Huy Ích",
    "Nguyễn Gia Thiều", "Đinh Bộ Lĩnh", "Lạc Long Quân", "Hùng Vương", "An Dương Vương",
    "Lê Ngọc Hân", "Huỳnh Văn Bánh", "Tôn Thất Tùng", "Lương Định Của", "Trần Quốc Thảo",
    "Lê Văn Việt", "Đặng Trần Côn", "Phan Văn Hớn", "Tạ Quang Bửu", "Ngô Sĩ Liên",
    "Trần Khánh Dư", "Nguyễn Hữu Huân", "Hoàng Diệu", "Lê Văn Hưu", "Nguyễn Công Trứ",
    "Trần Cao Vân", "Trần Bình Trọng", "Nguyễn Thiện Thuật", "Nguyễn Văn Linh",
    "Phạm Văn Chiêu", "Trần Quang Diệu", "Nguyễn Gia Thiều", "Võ Văn Kiệt", "Sương Nguyệt Anh",
    "Nguyễn Thị Lựu", "Lê Văn Sỹ", "Phạm Hữu Lầu", "Nguyễn Văn Luông", "Đinh Công Tráng",
    "Phan Đăng Lưu", "Nguyễn Văn Bảo", "Trương Công Định", "Nguyễn Đức Cảnh", "Lê Đình Chinh",
]
TH_PLACES = ["Hòa Bình", "Kết Đoàn", "Bình Minh", "Hồng Hà", "Thăng Long", "Chương Dương",
             "Điện Biên", "Bạch Đằng", "Chi Lăng", "Đống Đa", "Lam Sơn", "Hoa Lư", "Cửu Long",
             "Trường Sơn", "Sông Đà", "Tây Sơn", "Bến Nghé", "Phú Thọ", "Thành Công",
             "Măng Non"]
MN_PUBLIC = [
    "Hoa Mai", "Hoa Sen", "Hướng Dương", "Sơn Ca", "Họa Mi", "Vành Khuyên", "Tuổi Thơ",
    "Măng Non", "Hoa Hồng", "Hoa Lan", "Hoa Cúc", "Sao Mai", "Rạng Đông", "Hoa Phượng",
    "Tuổi Ngọc", "Bình Minh", "Hoàng Yến", "Chim Non", "Hoa Đào", "Hoa Lài", "Vàng Anh",
    "Thủy Tiên", "Bông Hồng", "Hoa Huệ", "Hoa Quỳnh", "Ngọc Lan", "Hoa Trà", "Hoa Mười Giờ",
    "Bằng Lăng", "Sen Hồng", "Sao Sáng", "Búp Sen Xanh", "Thiên Lý", "Bé Ngoan", "Ánh Sao",
    "19/5", "30/4", "1/6", "Tuổi Xanh", "Phong Lan", "Anh Đào", "Hoa Sứ", "Cẩm Chướng",
    "Hoa Súng", "Sao Biển", "Bông Sen", "Tuổi Hoa", "Mầm Xanh", "Chồi Non", "Ánh Dương",
]
MN_PRIVATE = [
    "Ngôi Sao Nhỏ", "Sao Việt", "Việt Mỹ", "Mặt Trời Nhỏ", "Thế Giới Trẻ Thơ", "Ước Mơ",
    "Bé Yêu", "Cầu Vồng", "Thiên Thần Nhỏ", "Hạt Đậu Nhỏ", "Sóc Nâu", "Gấu Con",
    "Bông Sen Vàng", "Hoa Mặt Trời", "Tuổi Hồng", "Nắng Mai", "Ban Mai", "Quả Táo Đỏ",
    "Bảo Ngọc", "Ngôi Nhà Trẻ Thơ", "Trí Tuệ Nhỏ", "Thỏ Trắng", "Hải Âu", "Ong Vàng",
    "Chú Ếch Con", "Mai Anh", "Hoa Cải Vàng", "Ngôi Nhà Hạnh Phúc", "Hạnh Phúc", "Vườn Xanh",
    "Cánh Diều", "Tre Xanh", "Sắc Màu", "Bút Chì Màu", "Chuồn Chuồn Kim", "Hoa Bồ Công Anh",
    "Thần Đồng Nhỏ", "Mây Hồng", "Kỳ Lân", "Ngọc Bích",
]
PRIVATE_SCHOOLS = [
    "Ngôi Sao", "Á Châu", "Tuệ Đức", "Vạn Hạnh", "Việt Mỹ", "Thái Bình", "Nam Việt",
    "Đinh Thiện Lý", "Trí Đức", "Ngọc Viễn Đông", "Bắc Sơn", "Việt Anh", "Sao Việt",
    "Mùa Xuân", "Văn Lang", "Đức Trí", "Thanh Bình", "Minh Đức", "Quốc Văn Sài Gòn",
    "Hoàng Gia", "Trường Xuân", "Khai Minh", "Hồng Đức", "Ánh Dương", "Việt Nhật",
    "Hàn Việt", "Đông Du", "Thái Bình Dương", "Phương Nam", "Hưng Đạo", "Vĩnh Viễn",
    "Sài Gòn", "Gia Định", "Hòa Bình", "Lạc Hồng", "Hồng Hà", "Việt Thanh", "Tân Hòa",
    "Trí Tuệ", "Nhân Văn", "Tuổi Trẻ", "Phan Sào Nam", "Nguyễn Khuyến", "Trần Quốc Tuấn",
]

# Vietnamese person names. Family names with rough national frequencies (per mille; in the
# South Huỳnh and Võ are more common than Hoàng and Vũ).
FAMILY_NAMES = [
    ("Nguyễn", 380), ("Trần", 110), ("Lê", 95), ("Phạm", 70), ("Huỳnh", 35), ("Hoàng", 16),
    ("Phan", 45), ("Võ", 28), ("Vũ", 11), ("Đặng", 21), ("Bùi", 20), ("Đỗ", 14), ("Hồ", 13),
    ("Ngô", 13), ("Dương", 10), ("Lý", 5), ("Trương", 8), ("Đinh", 6), ("Lâm", 5),
    ("Mai", 4), ("Đoàn", 4), ("Lương", 3), ("Cao", 3), ("Châu", 3), ("Tạ", 2), ("Tô", 2),
    ("Hà", 2), ("Quách", 1), ("Thái", 2), ("Văn", 1), ("La", 1), ("Kiều", 1), ("Tăng", 1),
]
MIDDLE_F = [("Thị", 45), ("Ngọc", 10), ("Thu", 6), ("Thanh", 6), ("Kim", 5), ("Hồng", 4),
            ("Minh", 3), ("Bảo", 3), ("Mỹ", 4), ("Thùy", 4), ("Phương", 3), ("Hoài", 2),
            ("Thị Thu", 3), ("Thị Ngọc", 3), ("Thị Kim", 2), ("Thị Thanh", 2), ("Diệu", 2),
            ("Tuyết", 1), ("Quỳnh", 2), ("Khánh", 2)]
MIDDLE_M = [("Văn", 35), ("Minh", 10), ("Hoàng", 6), ("Quốc", 7), ("Thanh", 6), ("Đức", 6),
            ("Hữu", 6), ("Công", 4), ("Tấn", 4), ("Trọng", 3), ("Anh", 3), ("Gia", 3),
            ("Ngọc", 3), ("Phước", 2), ("Thành", 3), ("Xuân", 2), ("Duy", 2), ("Nhật", 2),
            ("Trung", 2), ("Văn Minh", 1)]
GIVEN_F = ["Lan", "Hương", "Hoa", "Mai", "Thảo", "Trang", "Linh", "Ngọc", "Hạnh", "Nhung",
           "Hà", "Thủy", "Yến", "Phương", "Vy", "Anh", "Tuyết", "Loan", "Hằng", "Dung", "Nga",
           "Oanh", "Trâm", "Uyên", "Hiền", "Nhi", "Quyên", "Tâm", "Diễm", "Xuân", "Thu",
           "Vân", "Hồng", "Liên", "Giang", "Châu", "Ly", "My", "Thư", "Ngân", "Huyền", "Thúy",
           "Duyên", "Trinh", "Hậu", "Lệ", "Nguyệt", "Phượng", "Kiều", "Thanh"]
GIVEN_M = ["Hùng", "Dũng", "Tuấn", "Minh", "Nam", "Long", "Phong", "Quang", "Sơn", "Tài",
           "Thành", "Trung", "Vinh", "Hải", "Khoa", "Khang", "Huy", "Đức", "Bảo", "Hiếu",
           "Phúc", "Thắng", "Cường", "Toàn", "Tùng", "Lộc", "Nghĩa", "Trí", "Hoàng", "Tâm",
           "Tín", "Thịnh", "Hưng", "Hòa", "Bình", "Lâm", "Kiên", "Duy", "Đạt", "Quân",
           "Thái", "Hậu", "Phát", "Nhân", "Vũ", "Tú", "An", "Danh", "Sang", "Tiến"]
# Share of women per kind of account (preschool staff are almost all women).
FEMALE_SHARE = {"librarian": 0.85, "principal": 0.6, "principal_mn": 0.97, "officer": 0.55}


def _scaled(full, scale, minimum=1):
    return max(minimum, int(round(full * scale)))


def _weighted(rng, pairs):
    values, weights = zip(*pairs)
    return rng.choices(values, weights=weights, k=1)[0]


def _person(rng, kind):
    female = rng.random() < FEMALE_SHARE[kind]
    family = _weighted(rng, FAMILY_NAMES)
    middle = _weighted(rng, MIDDLE_F if female else MIDDLE_M)
    given = rng.choice(GIVEN_F if female else GIVEN_M)
    return {"first_name": given, "last_name": f"{family} {middle}"}


def _wards_canonical():
    """All 168 wards in a fixed order: (number, kind word, name, group, HCMC district)."""
    out, per_group = [], {}
    for group, kind, names in WARDS_BY_DISTRICT:
        for name in names:
            if group in NEIGHBOUR_DISTRICTS:
                i = per_group.get(group, 0)
                per_group[group] = i + 1
                district = NEIGHBOUR_DISTRICTS[group][i % len(NEIGHBOUR_DISTRICTS[group])]
            else:
                district = group
            out.append((len(out) + 1, kind, name, group, district))
    return out


def _school_name(rng, used, prefix, pool, ward, ward_share=0.0):
    """A school name not used yet in the city.

    Names repeat across a real city (a “Trường Tiểu học Lê Văn Tám” in several districts), so
    after a few tries a taken name gets its ward, as city-wide lists write it:
    “Trường Mầm non Hoa Mai (phường Tân Định)”, then a number within the ward.
    """
    def pick():
        if ward_share and rng.random() < ward_share:
            return f"{prefix} {ward['ward_name']}"
        return f"{prefix} {rng.choice(pool)}"

    candidates = [pick() for _attempt in range(4)]
    for name in candidates:
        if name not in used:
            used.add(name)
            return name
    context = f"({ward['ward'][0].lower()}{ward['ward'][1:]})"
    for name in candidates:
        if f"{name} {context}" not in used:
            used.add(f"{name} {context}")
            return f"{name} {context}"
    k = 2
    while f"{candidates[0]} {k} {context}" in used:
        k += 1
    used.add(f"{candidates[0]} {k} {context}")
    return f"{candidates[0]} {k} {context}"


def _multi_prefix(levels):
    abbrs = [LEVEL_ABBR[lvl] for lvl in levels]
    if abbrs[0] == "MN":
        abbrs[0] = "Mầm non"
    if len(abbrs) == 2:  # "Trường Tiểu học và THCS", "Trường Mầm non và Tiểu học"
        abbrs = [{"TH": "Tiểu học"}.get(a, a) for a in abbrs] if "THPT" not in abbrs else abbrs
    return "Trường " + ", ".join(abbrs[:-1]) + " và " + abbrs[-1]


def _address(rng, group):
    street = rng.choice(PEOPLE) if rng.random() < 0.85 else f"Đường số {rng.randint(1, 30)}"
    number = str(rng.randint(1, 450))
    if rng.random() < 0.2:
        number += f"/{rng.randint(1, 60)}"
    area = PHONE_AREA.get(group, "028")
    phone = f"{area} {rng.randint(3500, 3999)} {rng.randint(0, 9999):04d}"
    return f"{number} {street}", phone


def plan_city(scale=0.01, seed=1):
    """The generated city as plain data (dicts, strings, dates, booleans); no database.

    Same (scale, seed) -> same plan. Keys: districts, wards, clusters, schools, users.
    """
    if scale <= 0:
        raise ValidationError(_l("The scale must be greater than 0."), field="scale")
    rng = random.Random(seed)

    # --- Offices: districts, then wards (each in one district), then clusters of wards.
    n_districts = min(len(DISTRICTS), _scaled(DISTRICTS_AT_FULL_SCALE, scale))
    all_wards = _wards_canonical()
    n_wards = min(len(all_wards), max(n_districts, _scaled(WARDS_AT_FULL_SCALE, scale)))
    n_clusters = min(n_wards, _scaled(CLUSTERS_AT_FULL_SCALE, scale))

    chosen = sorted(rng.sample(DISTRICTS, n_districts))
    chosen_short = [short for _n, short, _name in chosen]
    home = {short: [w for w in all_wards if w[4] == short and w[3] == short]
            for short in chosen_short}
    picked = {}  # ward number -> district short code
    for short in chosen_short:  # every district keeps at least one of its own wards
        w = rng.choice(home[short])
        picked[w[0]] = short
    rest_home = [w for short in chosen_short for w in home[short] if w[0] not in picked]
    rest_other = [w for w in all_wards if w[0] not in picked and w not in rest_home]
    rng.shuffle(rest_home)
    rng.shuffle(rest_other)
    for w in (rest_home + rest_other)[: n_wards - len(picked)]:
        picked[w[0]] = w[4] if w[4] in chosen_short else rng.choice(chosen_short)

    districts = [{
        "code": f"79PGD{number:02d}",
        "name": f"Phòng Giáo dục và Đào tạo {name}",
        "short": short,
        "valid_from": FAR_PAST,
        "valid_to": LAST_DISTRICT_DAY,
    } for number, short, name in chosen]
    district_code = {d["short"]: d["code"] for d in districts}
    order = {short: i for i, short in enumerate(chosen_short)}
    ward_rows = sorted((w for w in all_wards if w[0] in picked),
                       key=lambda w: (order[picked[w[0]]], w[0]))
    wards = []
    for i, (number, kind, name, group, _home) in enumerate(ward_rows):
        wards.append({
            "code": f"79VH{number:03d}",
            "name": f"Phòng Văn hóa – Xã hội {kind} {name}",
            "ward": f"{kind[0].upper()}{kind[1:]} {name}",
            "ward_name": name,
            "group": group,
            "district": district_code[picked[number]],
            # Clusters group neighbouring wards (contiguous in this order).
            "cluster": f"79CUM{(i * n_clusters) // len(ward_rows) + 1:02d}",
            "valid_from": REFORM_DAY,
            "valid_to": None,
        })
    clusters = [{"code": f"79CUM{i:02d}", "name": f"Cụm trường số {i}",
                 "valid_from": REFORM_DAY, "valid_to": None}
                for i in range(1, n_clusters + 1)]

    # --- Schools: how many of each kind, which are non-public, where they are.
    counts = {cat: _scaled(full, scale) for cat, full in SCHOOLS_AT_FULL_SCALE.items()}
    if sum(counts.values()) < MIN_SCHOOLS:
        counts["MN"] += MIN_SCHOOLS - sum(counts.values())
    used_names = {row[1] for row in DEMO_SCHOOLS}
    wards_order = list(range(len(wards)))
    raw = []
    for cat, n in counts.items():
        non_public = set(rng.sample(range(n), int(round(n * NON_PUBLIC_SHARE[cat]))))
        for i in range(n):
            levels = (_weighted(rng, MULTI_LEVELS) if cat == "MULTI" else LEVELS_OF[cat])
            raw.append({"category": cat, "levels": levels, "is_public": i not in non_public})
    # Every ward office gets at least one school when there are enough schools.
    rng.shuffle(raw)
    rng.shuffle(wards_order)
    slots = list(wards_order)
    for school in raw:
        if "upper_secondary" not in school["levels"] and slots:
            school["ward_index"] = slots.pop()
        else:
            school["ward_index"] = rng.randrange(len(wards))

    schools = []
    for school in raw:
        ward = wards[school["ward_index"]]
        cat, levels, public = school["category"], school["levels"], school["is_public"]
        if cat == "MN":
            name = _school_name(rng, used_names, SINGLE_LEVEL_PREFIX[cat],
                                MN_PUBLIC if public else MN_PRIVATE, ward,
                                0.2 if public else 0.0)
        elif cat == "MULTI":
            name = _school_name(rng, used_names, _multi_prefix(levels),
                                PEOPLE if public else PRIVATE_SCHOOLS, ward)
        else:
            pool = (PEOPLE + TH_PLACES if cat == "TH" else PEOPLE) if public else PRIVATE_SCHOOLS
            name = _school_name(rng, used_names, SINGLE_LEVEL_PREFIX[cat], pool, ward,
                                0.1 if cat == "TH" and public else 0.0)
        address, phone = _address(rng, ward["group"])
        under_department = "upper_secondary" in levels
        schools.append({
            "name": name,
            "category": cat,
            "levels": levels,
            "is_public": public,
            "address": address,
            "phone": phone,
            "ward": ward["ward"],
            # Administrative parents before and after 01/07/2025, professional parent after.
            "district_office": None if under_department else ward["district"],
            "ward_office": None if under_department else ward["code"],
            "cluster": None if under_department else ward["cluster"],
            "under_department": under_department,
            "_sort": (school["ward_index"], list(SCHOOLS_AT_FULL_SCALE).index(cat)),
        })
    # Codes follow the map: ward by ward, preschools first.
    schools.sort(key=lambda s: s.pop("_sort"))
    for i, school in enumerate(schools):
        school["code"] = f"79{SCHOOL_CODE_START + i:06d}"

    # --- Accounts.
    users = []

    def account(username, unit_code, role, person):
        users.append({"username": username, "email": f"{username}@{EMAIL_DOMAIN}",
                      "unit": unit_code, "role": role, **person})

    for school in schools:
        account("tv" + school["code"], school["code"], ROLE_LIBRARIAN,
                _person(rng, "librarian"))
        account("ht" + school["code"], school["code"], ROLE_PRINCIPAL,
                _person(rng, "principal_mn" if school["category"] == "MN" else "principal"))
    for unit in districts + wards + clusters:
        account("cb" + unit["code"].lower(), unit["code"], ROLE_OFFICER,
                _person(rng, "officer"))

    return {"scale": scale, "seed": seed, "districts": districts, "wards": wards,
            "clusters": clusters, "schools": schools, "users": users}


# ---------------------------------------------------------------------------------------
# Writing the plan.


class CityAlreadyGenerated(ValidationError, click.ClickException):
    """The generator refuses a database that already holds its codes or accounts.

    Also a click exception, so `flask generate-city` prints the message without a traceback.
    """

    exit_code = 1

    def __init__(self, message, **params):
        ValidationError.__init__(self, message, **params)
        # Click prints the error after the command's app context has ended, when Flask-Babel
        # no longer translates: keep the text rendered now (in the app's language) for it,
        # and the lazy message for everyone else.
        self.rendered = str(self)
        self.message = message

    def format_message(self):
        return self.rendered


def _chunks(items, size=BATCH):
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _existing(session, column, values):
    found = []
    for chunk in _chunks(sorted(values), 500):
        found += session.execute(select(column).where(column.in_(chunk))).scalars().all()
    return sorted(found)


def _insert_returning(session, table, rows, key):
    """Bulk INSERT ... RETURNING id, key; returns {key: id}."""
    ids = {}
    for chunk in _chunks(rows):
        result = session.execute(insert(table).returning(table.c.id, table.c[key]), chunk)
        ids.update({k: i for i, k in result.all()})
    return ids


def _insert(session, table, rows):
    for chunk in _chunks(rows):
        session.execute(insert(table), chunk)


def _unit_row(code, name, kind, valid_from=FAR_PAST, valid_to=None, levels=(),
              is_public=True, address=None, ward=None, phone=None):
    return {
        "code": code, "name": name, "kind": kind,
        "teaches_preschool": "preschool" in levels,
        "teaches_primary": "primary" in levels,
        "teaches_lower_secondary": "lower_secondary" in levels,
        "teaches_upper_secondary": "upper_secondary" in levels,
        "is_public": is_public, "address": address, "ward": ward, "phone": phone,
        "email": None, "valid_from": valid_from, "valid_to": valid_to,
    }


def _link_row(child, parent, hierarchy=Hierarchy.administrative, valid_from=FAR_PAST,
              valid_to=None):
    return {"child_id": child, "parent_id": parent, "hierarchy": hierarchy,
            "valid_from": valid_from, "valid_to": valid_to}


def generate_city(session, scale=0.01, seed=1, commit=True):
    """Write `plan_city(scale, seed)` into the database in one transaction.

    Works on an empty database (creates the Sở) and next to the demo city. Refuses, before
    writing anything, when a code or account of the plan already exists (e.g. a second run).
    Returns {'schools', 'offices' (offices and clusters), 'users', ...}.

    Rows are written with Core bulk INSERTs, not ORM objects: the audit listener
    (app.core.audit) only sees the ORM unit of work, so generated data is intentionally not
    in the audit log (it would be 30,000 "created" entries nobody made).
    """
    from flask_appbuilder.security.sqla.models import Role, assoc_user_role
    from werkzeug.security import generate_password_hash

    from app.collection.models import Location, LocationKind

    plan = plan_city(scale, seed)
    units_t, links_t = OrgUnit.__table__, OrgLink.__table__
    users_t, locations_t = AppUser.__table__, Location.__table__
    try:
        roles = dict(session.execute(
            select(Role.name, Role.id).where(
                Role.name.in_([ROLE_LIBRARIAN, ROLE_PRINCIPAL, ROLE_OFFICER]))).all())
        missing = {ROLE_LIBRARIAN, ROLE_PRINCIPAL, ROLE_OFFICER} - set(roles)
        if missing:
            raise ValidationError(
                _l("The roles are not in the database yet: run “flask sync-roles” first."))

        offices = plan["districts"] + plan["wards"] + plan["clusters"]
        codes = [u["code"] for u in offices + plan["schools"]]
        taken = _existing(session, units_t.c.code, codes)
        if taken:
            raise CityAlreadyGenerated(
                _l("This database already holds a generated city (the unit code %(code)s "
                   "exists). The city is generated only once per database: nothing was saved. "
                   "Use an empty database or one with only the demo city."),
                code=taken[0])
        taken = (_existing(session, users_t.c.username, [u["username"] for u in plan["users"]])
                 or _existing(session, users_t.c.email, [u["email"] for u in plan["users"]]))
        if taken:
            raise CityAlreadyGenerated(
                _l("The account %(username)s already exists. The city is generated only once "
                   "per database: nothing was saved."),
                username=taken[0])

        dept_id = session.execute(
            select(units_t.c.id).where(units_t.c.kind == UnitKind.department)
            .order_by(units_t.c.id).limit(1)).scalar()
        created_department = dept_id is None
        if created_department:
            dept_id = _insert_returning(session, units_t, [_unit_row(
                DEPARTMENT_CODE, DEPARTMENT_NAME, UnitKind.department,
                address="66-68 Lê Thánh Tôn, Phường Sài Gòn")], "code")[DEPARTMENT_CODE]

        unit_rows = (
            [_unit_row(d["code"], d["name"], UnitKind.district_office, d["valid_from"],
                       d["valid_to"]) for d in plan["districts"]]
            + [_unit_row(w["code"], w["name"], UnitKind.ward_office, w["valid_from"],
                         ward=w["ward"]) for w in plan["wards"]]
            + [_unit_row(c["code"], c["name"], UnitKind.cluster, c["valid_from"])
               for c in plan["clusters"]]
            + [_unit_row(s["code"], s["name"], UnitKind.school, levels=s["levels"],
                         is_public=s["is_public"], address=s["address"], ward=s["ward"],
                         phone=s["phone"]) for s in plan["schools"]]
        )
        ids = _insert_returning(session, units_t, unit_rows, "code")

        links = []
        for d in plan["districts"]:
            links.append(_link_row(ids[d["code"]], dept_id, valid_to=LAST_DISTRICT_DAY))
        for w in plan["wards"]:
            links.append(_link_row(ids[w["code"]], dept_id, valid_from=REFORM_DAY))
        for c in plan["clusters"]:
            links.append(_link_row(ids[c["code"]], dept_id, Hierarchy.professional,
                                   valid_from=REFORM_DAY))
        for s in plan["schools"]:
            sid = ids[s["code"]]
            if s["under_department"]:
                links.append(_link_row(sid, dept_id))
                continue
            links.append(_link_row(sid, ids[s["district_office"]], valid_to=LAST_DISTRICT_DAY))
            links.append(_link_row(sid, ids[s["ward_office"]], valid_from=REFORM_DAY))
            links.append(_link_row(sid, ids[s["cluster"]], Hierarchy.professional,
                                   valid_from=REFORM_DAY))
        _insert(session, links_t, links)

        _insert(session, locations_t, [
            {"school_id": ids[s["code"]], "code": "KM", "name": "Kho mở",
             "kind": LocationKind.open_stack, "is_active": True, "note": None}
            for s in plan["schools"]])

        # One hash for every generated account: hashing 7,000 times would take minutes.
        password = generate_password_hash(GENERATED_PASSWORD)
        now = datetime.datetime.now()
        user_ids = _insert_returning(session, users_t, [
            {"username": u["username"], "email": u["email"], "first_name": u["first_name"],
             "last_name": u["last_name"], "password": password, "active": True,
             "unit_id": ids[u["unit"]], "created_on": now, "changed_on": now,
             "login_count": None, "fail_login_count": None, "last_login": None,
             "created_by_fk": None, "changed_by_fk": None, "phone": None}
            for u in plan["users"]], "username")
        _insert(session, assoc_user_role, [
            {"user_id": user_ids[u["username"]], "role_id": roles[u["role"]]}
            for u in plan["users"]])
        if commit:
            session.commit()
    except Exception:
        session.rollback()
        raise
    return {
        "schools": len(plan["schools"]),
        "offices": len(offices),
        "users": len(plan["users"]),
        "districts": len(plan["districts"]),
        "wards": len(plan["wards"]),
        "clusters": len(plan["clusters"]),
        "links": len(links),
        "locations": len(plan["schools"]),
        "department_created": created_department,
    }
