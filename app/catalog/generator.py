"""City-scale catalogue data for the generated schools, deterministic (for load tests).

Runs after `app.org.generator.generate_city` on the same (scale, seed), on the generated
schools only (never the demo schools). Per school it writes the library settings, the default
accession series (SGK, SNV, STK, STN), a few more shelving locations, intakes (lines of the
general register, numbered 1, 2, 3...), records with their authors, copies with their
accession numbers and barcodes, and the Counter rows set to the last numbers used, so that
`app.collection.services.allocate` continues after them.

At scale 1.0: about 10 million records and 15 million copies (on average 2,860 records and
4,300 copies per school; preschools hold a few hundred, upper-secondary schools around ten
thousand), and one upper-secondary school of about 50,000 copies (the largest THPT of the plan).

- `plan_catalogue(scale, seed)`: the size of each school's library (pure data, cheap).
- `plan_school(entry, seed)`: one school's library (pure data): locations, intakes, records
  (with authors and copies).
- `generate_catalogue(session, scale, seed)`: writes it, a chunk of schools per transaction,
  with Core bulk inserts (PostgreSQL: COPY; SQLite: executemany). Generated rows are not in
  the audit log, like the generated city. Schools whose library already exists (settings,
  series or records) are skipped, so an interrupted run can be resumed with the same arguments
  and gives the same data (each school has its own random generator).

The same book (same title, edition, authors, publisher, year, ISBN) appears in many schools,
as in a real city: book metadata depends only on (seed, book key), not on the school.
"""
import bisect
import concurrent.futures
import datetime
import functools
import math
import random
import time
import zlib

from flask_babel import lazy_gettext as _l
from sqlalchemy import insert, select, text

from app.catalog.models import ClassificationScheme, DocumentType, Record
from app.catalog.services import author_mark
from app.collection.models import (
    AccessionSeries,
    AuthorMarkRule,
    CopyStatus,
    Funding,
    LibrarySettings,
    Location,
    LocationKind,
)
from app.collection.services import DEFAULT_SERIES
from app.core.errors import ValidationError
from app.core.i18n import fold
from app.org.generator import (
    FAMILY_NAMES,
    GIVEN_F,
    GIVEN_M,
    MIDDLE_F,
    MIDDLE_M,
    PEOPLE,
    plan_city,
)
from app.org.models import OrgUnit

# --- Sizes ------------------------------------------------------------------------------

# Mean records per school at volume 1.0 (public school; non-public schools hold less).
MEAN_RECORDS = {"MN": 900, "TH": 3080, "THCS": 5540, "THPT": 9640, "MULTI": 7600}
NON_PUBLIC_FACTOR = 0.8
SIZE_SPREAD = 0.35  # sigma of the log-normal spread of school sizes
COPIES_PER_RECORD = (1.35, 1.65)
BIG_SCHOOL_COPIES = 50_000  # the largest THPT is made at least this big
MIN_RECORDS = 12
TEXTBOOK_COPY_SHARE = 0.25  # share of a school's copies that are textbooks (TH and above)
TEXTBOOK_RECORD_SHARE = 0.15  # at most this share of its records
SNV_SHARE = 0.04
STK_SHARE = {"MN": 0.12, "TH": 0.30, "THCS": 0.55, "THPT": 0.85}  # the rest is STN
ISBN_SHARE = 0.10
CHUNK_RECORDS = 25_000  # records per transaction (whole schools)
LAST_DAY = datetime.date(2025, 11, 20)

# --- Pools ------------------------------------------------------------------------------

GRADES = {"preschool": (), "primary": (1, 2, 3, 4, 5), "lower_secondary": (6, 7, 8, 9),
          "upper_secondary": (10, 11, 12)}
# First school year of the 2018 programme's textbooks, per grade.
FIRST_YEAR = {1: 2020, 2: 2021, 6: 2021, 3: 2022, 7: 2022, 10: 2022, 4: 2023, 8: 2023,
              11: 2023, 5: 2024, 9: 2024, 12: 2024}
_ARTS = ["Âm nhạc", "Mĩ thuật", "Giáo dục thể chất"]
SUBJECTS = {
    1: ["Tiếng Việt", "Toán", "Đạo đức", "Tự nhiên và Xã hội", "Hoạt động trải nghiệm"] + _ARTS,
    3: ["Tiếng Việt", "Toán", "Tiếng Anh", "Đạo đức", "Tự nhiên và Xã hội", "Tin học",
        "Công nghệ", "Hoạt động trải nghiệm"] + _ARTS,
    4: ["Tiếng Việt", "Toán", "Tiếng Anh", "Đạo đức", "Khoa học", "Lịch sử và Địa lí",
        "Tin học", "Công nghệ", "Hoạt động trải nghiệm"] + _ARTS,
    6: ["Ngữ văn", "Toán", "Tiếng Anh", "Khoa học tự nhiên", "Lịch sử và Địa lí",
        "Giáo dục công dân", "Tin học", "Công nghệ", "Hoạt động trải nghiệm, hướng nghiệp"]
    + _ARTS,
    10: ["Ngữ văn", "Toán", "Tiếng Anh", "Lịch sử", "Địa lí", "Vật lí", "Hóa học", "Sinh học",
         "Giáo dục kinh tế và pháp luật", "Tin học", "Công nghệ",
         "Hoạt động trải nghiệm, hướng nghiệp", "Giáo dục quốc phòng và an ninh"] + _ARTS,
}
SUBJECTS[2] = SUBJECTS[1]
SUBJECTS[5] = SUBJECTS[4]
SUBJECTS[7] = SUBJECTS[8] = SUBJECTS[9] = SUBJECTS[6]
SUBJECTS[11] = SUBJECTS[12] = SUBJECTS[10]
TWO_VOLUMES = {"Tiếng Việt", "Toán", "Ngữ văn"}
CORE = {"Tiếng Việt", "Toán", "Ngữ văn", "Tiếng Anh", "Khoa học tự nhiên", "Vật lí", "Hóa học",
        "Sinh học", "Lịch sử", "Địa lí", "Lịch sử và Địa lí", "Khoa học", "Tin học"}
SUBJECT_CLASS = {
    "Tiếng Việt": "495.922", "Toán": "510", "Ngữ văn": "807", "Tiếng Anh": "428",
    "Đạo đức": "170", "Giáo dục công dân": "170", "Tự nhiên và Xã hội": "500",
    "Khoa học": "500", "Khoa học tự nhiên": "500", "Lịch sử và Địa lí": "900",
    "Lịch sử": "959.7", "Địa lí": "910", "Vật lí": "530", "Hóa học": "540", "Sinh học": "570",
    "Tin học": "004", "Công nghệ": "600", "Âm nhạc": "780", "Mĩ thuật": "700",
    "Giáo dục thể chất": "796", "Hoạt động trải nghiệm": "370",
    "Hoạt động trải nghiệm, hướng nghiệp": "371.4", "Giáo dục kinh tế và pháp luật": "340",
    "Giáo dục quốc phòng và an ninh": "355",
}
# Textbook series (bộ sách): name, publisher, place.
TEXTBOOK_SERIES = [
    ("Kết nối tri thức với cuộc sống", "NXB Giáo dục Việt Nam", "Hà Nội"),
    ("Chân trời sáng tạo", "NXB Giáo dục Việt Nam", "TP. Hồ Chí Minh"),
    ("Cánh Diều", "NXB Đại học Sư phạm", "Hà Nội"),
]
ENGLISH_SERIES = ["Global Success", "i-Learn Smart World", "Friends Plus"]

PUBLISHERS = [  # name, place, ISBN publisher digits
    ("NXB Giáo dục Việt Nam", "Hà Nội", "00"), ("NXB Kim Đồng", "Hà Nội", "2"),
    ("NXB Trẻ", "TP. Hồ Chí Minh", "1"), ("NXB Văn học", "Hà Nội", "69"),
    ("NXB Hội Nhà văn", "Hà Nội", "53"), ("NXB Tổng hợp TP. Hồ Chí Minh", "TP. Hồ Chí Minh", "58"),
    ("NXB Đại học Sư phạm", "Hà Nội", "54"),
    ("NXB Đại học Quốc gia Hà Nội", "Hà Nội", "62"),
    ("NXB Đại học Quốc gia TP. Hồ Chí Minh", "TP. Hồ Chí Minh", "73"),
    ("NXB Thanh niên", "Hà Nội", "64"), ("NXB Phụ nữ Việt Nam", "Hà Nội", "56"),
    ("NXB Dân trí", "Hà Nội", "88"), ("NXB Thế giới", "Hà Nội", "77"),
    ("NXB Lao động", "Hà Nội", "59"), ("NXB Mỹ thuật", "Hà Nội", "78"),
    ("NXB Đà Nẵng", "Đà Nẵng", "84"), ("NXB Khoa học xã hội", "Hà Nội", "308"),
    ("NXB Từ điển Bách khoa", "Hà Nội", "902"),
]
PUBLISHER = {name: (name, place, digits) for name, place, digits in PUBLISHERS}
GENERAL_PUBLISHERS = ["NXB Trẻ", "NXB Văn học", "NXB Hội Nhà văn",
                      "NXB Tổng hợp TP. Hồ Chí Minh", "NXB Thanh niên", "NXB Dân trí",
                      "NXB Phụ nữ Việt Nam", "NXB Lao động"]
STUDY_PUBLISHERS = ["NXB Giáo dục Việt Nam", "NXB Đại học Sư phạm",
                    "NXB Đại học Quốc gia Hà Nội", "NXB Đại học Quốc gia TP. Hồ Chí Minh",
                    "NXB Tổng hợp TP. Hồ Chí Minh", "NXB Dân trí"]
CHILDREN_PUBLISHERS = ["NXB Kim Đồng", "NXB Kim Đồng", "NXB Trẻ", "NXB Mỹ thuật",
                       "NXB Phụ nữ Việt Nam", "NXB Dân trí"]

# Vietnamese classics and well-known books: title, author, class number, genre.
CLASSICS = [
    ("Truyện Kiều", "Nguyễn Du", "895.9221", "Thơ"),
    ("Lục Vân Tiên", "Nguyễn Đình Chiểu", "895.9221", "Thơ"),
    ("Chinh phụ ngâm", "Đặng Trần Côn", "895.9221", "Thơ"),
    ("Hoàng Lê nhất thống chí", "Ngô gia văn phái", "895.9223", "Tiểu thuyết"),
    ("Truyền kỳ mạn lục", "Nguyễn Dữ", "895.9223", "Truyện ngắn"),
    ("Tắt đèn", "Ngô Tất Tố", "895.9223", "Tiểu thuyết"),
    ("Số đỏ", "Vũ Trọng Phụng", "895.9223", "Tiểu thuyết"),
    ("Giông tố", "Vũ Trọng Phụng", "895.9223", "Tiểu thuyết"),
    ("Chí Phèo", "Nam Cao", "895.9223", "Truyện ngắn"),
    ("Lão Hạc", "Nam Cao", "895.9223", "Truyện ngắn"),
    ("Sống mòn", "Nam Cao", "895.9223", "Tiểu thuyết"),
    ("Vợ nhặt", "Kim Lân", "895.9223", "Truyện ngắn"),
    ("Hai đứa trẻ", "Thạch Lam", "895.9223", "Truyện ngắn"),
    ("Gió đầu mùa", "Thạch Lam", "895.9223", "Truyện ngắn"),
    ("Vang bóng một thời", "Nguyễn Tuân", "895.9223", "Truyện ngắn"),
    ("Những ngày thơ ấu", "Nguyên Hồng", "895.9228", "Hồi ký"),
    ("Bỉ vỏ", "Nguyên Hồng", "895.9223", "Tiểu thuyết"),
    ("Dế Mèn phiêu lưu ký", "Tô Hoài", "895.9223", "Truyện thiếu nhi"),
    ("Vợ chồng A Phủ", "Tô Hoài", "895.9223", "Truyện ngắn"),
    ("Đất rừng phương Nam", "Đoàn Giỏi", "895.9223", "Tiểu thuyết"),
    ("Quê nội", "Võ Quảng", "895.9223", "Truyện thiếu nhi"),
    ("Tuổi thơ dữ dội", "Phùng Quán", "895.9223", "Tiểu thuyết"),
    ("Chiếc lược ngà", "Nguyễn Quang Sáng", "895.9223", "Truyện ngắn"),
    ("Rừng xà nu", "Nguyễn Trung Thành", "895.9223", "Truyện ngắn"),
    ("Hòn Đất", "Anh Đức", "895.9223", "Tiểu thuyết"),
    ("Người mẹ cầm súng", "Nguyễn Thi", "895.9223", "Truyện ký"),
    ("Những ngôi sao xa xôi", "Lê Minh Khuê", "895.9223", "Truyện ngắn"),
    ("Nỗi buồn chiến tranh", "Bảo Ninh", "895.9223", "Tiểu thuyết"),
    ("Thương nhớ mười hai", "Vũ Bằng", "895.9228", "Tùy bút"),
    ("Cánh đồng bất tận", "Nguyễn Ngọc Tư", "895.9223", "Truyện ngắn"),
    ("Tôi thấy hoa vàng trên cỏ xanh", "Nguyễn Nhật Ánh", "895.9223", "Truyện dài"),
    ("Mắt biếc", "Nguyễn Nhật Ánh", "895.9223", "Truyện dài"),
    ("Cho tôi xin một vé đi tuổi thơ", "Nguyễn Nhật Ánh", "895.9223", "Truyện dài"),
    ("Cô gái đến từ hôm qua", "Nguyễn Nhật Ánh", "895.9223", "Truyện dài"),
    ("Ngồi khóc trên cây", "Nguyễn Nhật Ánh", "895.9223", "Truyện dài"),
    ("Cây chuối non đi giày xanh", "Nguyễn Nhật Ánh", "895.9223", "Truyện dài"),
    ("Nhật ký Đặng Thùy Trâm", "Đặng Thùy Trâm", "895.9228", "Nhật ký"),
    ("Nhật ký trong tù", "Hồ Chí Minh", "895.9221", "Thơ"),
    ("Từ ấy", "Tố Hữu", "895.9221", "Thơ"),
    ("Góc sân và khoảng trời", "Trần Đăng Khoa", "895.9221", "Thơ"),
    ("Búp sen xanh", "Sơn Tùng", "895.9223", "Tiểu thuyết"),
    ("Lửa thiêng", "Huy Cận", "895.9221", "Thơ"),
    ("Gửi hương cho gió", "Xuân Diệu", "895.9221", "Thơ"),
    ("Thi nhân Việt Nam", "Hoài Thanh", "895.9221", "Phê bình"),
    ("Việt Nam sử lược", "Trần Trọng Kim", "959.7", "Lịch sử"),
]
# Translated books: title, author (as catalogued: "Family, Given"), class, genre.
TRANSLATED = [
    ("Những người khốn khổ", "Hugo, Victor", "843", "Tiểu thuyết"),
    ("Hoàng tử bé", "Saint-Exupéry, Antoine de", "843", "Truyện"),
    ("Không gia đình", "Malot, Hector", "843", "Tiểu thuyết"),
    ("Ba chàng lính ngự lâm", "Dumas, Alexandre", "843", "Tiểu thuyết"),
    ("Hai vạn dặm dưới đáy biển", "Verne, Jules", "843", "Tiểu thuyết"),
    ("Tám mươi ngày vòng quanh thế giới", "Verne, Jules", "843", "Tiểu thuyết"),
    ("Ông già và biển cả", "Hemingway, Ernest", "813", "Tiểu thuyết"),
    ("Những cuộc phiêu lưu của Tom Sawyer", "Twain, Mark", "813", "Tiểu thuyết"),
    ("Túp lều bác Tôm", "Stowe, Harriet Beecher", "813", "Tiểu thuyết"),
    ("Đồi gió hú", "Brontë, Emily", "823", "Tiểu thuyết"),
    ("Kiêu hãnh và định kiến", "Austen, Jane", "823", "Tiểu thuyết"),
    ("Robinson Crusoe", "Defoe, Daniel", "823", "Tiểu thuyết"),
    ("Harry Potter và hòn đá phù thủy", "Rowling, J. K.", "823", "Tiểu thuyết"),
    ("Nhà giả kim", "Coelho, Paulo", "869", "Tiểu thuyết"),
    ("Totto-chan bên cửa sổ", "Kuroyanagi, Tetsuko", "895.6", "Hồi ký"),
    ("Điều kỳ diệu của tiệm tạp hóa Namiya", "Higashino, Keigo", "895.6", "Tiểu thuyết"),
    ("Chiến tranh và hòa bình", "Tolstoy, Lev", "891.7", "Tiểu thuyết"),
    ("Thép đã tôi thế đấy", "Ostrovsky, Nikolai", "891.7", "Tiểu thuyết"),
    ("Những cuộc phiêu lưu của Pinocchio", "Collodi, Carlo", "853", "Truyện thiếu nhi"),
    ("Chuyện con mèo dạy hải âu bay", "Sepúlveda, Luis", "863", "Truyện thiếu nhi"),
    ("Đắc nhân tâm", "Carnegie, Dale", "158", "Kỹ năng sống"),
    ("Tây du ký", "Ngô Thừa Ân", "895.1", "Tiểu thuyết"),
    ("Tam quốc diễn nghĩa", "La Quán Trung", "895.1", "Tiểu thuyết"),
]
GRADED_READERS = ["The Elephant Man", "Treasure Island", "Gulliver's Travels",
                  "Alice's Adventures in Wonderland", "The Jungle Book", "Black Beauty",
                  "Sherlock Holmes Short Stories", "The Wizard of Oz", "Little Women",
                  "Around the World in Eighty Days"]
LIT_NOUNS = ["Mùa hè", "Dòng sông", "Con đường", "Ngôi nhà", "Cánh đồng", "Bến đò", "Khu vườn",
             "Góc phố", "Mái trường", "Cánh diều", "Tuổi thơ", "Ký ức", "Ngọn đèn", "Chuyến tàu",
             "Bầu trời", "Tiếng ve", "Hoa phượng", "Cơn mưa", "Sân ga", "Biển", "Làng",
             "Quê nhà", "Mẹ", "Bà ngoại", "Người thầy", "Những người bạn", "Giấc mơ", "Phố cũ",
             "Sài Gòn", "Con hẻm", "Mùa thi", "Lá thư", "Chiếc áo", "Cây bàng", "Bờ đê"]
LIT_MODS = ["tuổi thơ", "xanh", "năm ấy", "không tên", "cuối hạ", "đầu đông", "mùa thu",
            "của mẹ", "quê ngoại", "bên sông", "ngày xưa", "lặng lẽ", "xa xăm", "đầy nắng",
            "trong mưa", "tháng Năm", "yêu thương", "bình yên", "thương nhớ", "rực rỡ",
            "của chúng ta", "ngày mai", "phương Nam", "cổ tích", "không ngủ", "cuối cùng",
            "trở về", "mùa gió chướng"]
LIT_GENRES = [("Truyện ngắn", "895.9223"), ("Tiểu thuyết", "895.9223"), ("Tản văn", "895.9228"),
              ("Thơ", "895.9221"), ("Truyện dài", "895.9223")]
TALES = ["Tấm Cám", "Thạch Sanh", "Sọ Dừa", "Cây khế", "Sơn Tinh, Thủy Tinh", "Thánh Gióng",
         "Con Rồng cháu Tiên", "Sự tích trầu cau", "Sự tích dưa hấu", "Cóc kiện trời",
         "Cây tre trăm đốt", "Sự tích Hồ Gươm", "Bánh chưng, bánh giầy", "Mị Châu – Trọng Thủy",
         "Chử Đồng Tử", "Sự tích chú Cuội cung trăng", "Thầy bói xem voi", "Ếch ngồi đáy giếng",
         "Đẽo cày giữa đường", "Sự tích cây vú sữa", "Sự tích con muỗi", "Sự tích hoa cúc trắng",
         "Nàng tiên Ốc", "Trí khôn của ta đây", "Ăn khế trả vàng", "Ông lão đánh cá và con cá vàng",
         "Cô bé quàng khăn đỏ", "Nàng Bạch Tuyết và bảy chú lùn", "Cô bé Lọ Lem",
         "Ba chú heo con", "Vịt con xấu xí", "Nàng tiên cá", "Cô bé bán diêm"]
TALE_SERIES = ["Truyện cổ tích Việt Nam", "Tranh truyện cổ tích", "Cổ tích thế giới",
               "Truyện kể cho bé trước giờ đi ngủ"]
# Book series in numbered volumes: title, author, volumes, publisher, class.
VOLUME_SERIES = [
    ("Doraemon", "Fujiko F. Fujio", 45, "NXB Kim Đồng", "895.6"),
    ("Thám tử lừng danh Conan", "Aoyama, Gosho", 100, "NXB Kim Đồng", "895.6"),
    ("Thần đồng đất Việt", "Lê Linh", 200, "NXB Trẻ", "895.9223"),
    ("Kính vạn hoa", "Nguyễn Nhật Ánh", 54, "NXB Kim Đồng", "895.9223"),
    ("Lịch sử Việt Nam bằng tranh", "Trần Bạch Đằng", 45, "NXB Trẻ", "959.7"),
    ("Kể chuyện Bác Hồ", "Trần Viết Hoàn", 12, "NXB Giáo dục Việt Nam", "959.704"),
    ("Truyện tranh danh nhân thế giới", "Nhiều tác giả", 30, "NXB Kim Đồng", "920"),
    ("Shin – Cậu bé bút chì", "Usui, Yoshito", 50, "NXB Kim Đồng", "895.6"),
]
KID_ANIMALS = ["Mèo", "Thỏ", "Gấu", "Sóc", "Voi", "Cún", "Ếch", "Vịt", "Gà", "Khỉ", "Nhím",
               "Ong", "Kiến", "Ốc sên", "Chuồn chuồn", "Dế", "Cá heo", "Chim sẻ", "Hươu", "Rùa"]
KID_TEMPLATES = ["Chú {a} {t}", "{a} con đi học", "Cuộc phiêu lưu của {a} con",
                 "{a} và những người bạn", "Chuyến đi xa của {a} nhỏ", "{a} con tìm mẹ",
                 "Bạn {a} {t}", "Ngày đầu tiên của {a} con", "{a} con học bơi"]
KID_TRAITS = ["dũng cảm", "tinh nghịch", "chăm chỉ", "tốt bụng", "lười biếng", "thông minh",
              "nhút nhát", "hiếu học", "vui vẻ", "biết lỗi"]
KID_TOPIC_TEMPLATES = ["Mười vạn câu hỏi vì sao: {t}", "Bách khoa tri thức cho trẻ em: {t}",
                       "Em tìm hiểu {t}", "Bé khám phá {t}", "Những câu chuyện về {t}"]
PRESCHOOL_TITLES = ["Bé làm quen với chữ cái", "Bé tập tô", "Bé làm quen với toán",
                    "Bé tập vẽ", "Bé học màu sắc", "Bé học hình khối", "Bé tập kể chuyện",
                    "Bé vui học số", "Bé làm quen với tiếng Anh", "Bé chuẩn bị vào lớp 1",
                    "Bé với an toàn giao thông", "Bé giữ gìn vệ sinh", "Bé học lễ giáo"]
HEROES = PEOPLE + ["Võ Nguyên Giáp", "Hồ Chí Minh", "Trần Quốc Toản", "Kim Đồng", "Vừ A Dính"]
TOPICS = [
    ("biển đảo Việt Nam", "915.97"), ("lịch sử Thành phố Hồ Chí Minh", "959.77"),
    ("thế giới động vật", "590"), ("thế giới thực vật", "580"), ("vũ trụ", "520"),
    ("Trái Đất", "550"), ("cơ thể người", "612"), ("môi trường và biến đổi khí hậu", "363.7"),
    ("an toàn giao thông", "363.12"), ("kỹ năng sống", "158"), ("văn hóa Việt Nam", "306.09597"),
    ("lễ hội truyền thống", "394.2"), ("ẩm thực Việt Nam", "641.59597"),
    ("các dân tộc Việt Nam", "305.8"), ("danh lam thắng cảnh Việt Nam", "915.97"),
    ("di sản thế giới tại Việt Nam", "959.7"), ("Chủ tịch Hồ Chí Minh", "959.704"),
    ("chiến dịch Điện Biên Phủ", "959.7041"), ("các triều đại phong kiến Việt Nam", "959.7"),
    ("khủng long", "567.9"), ("núi lửa và động đất", "551.2"), ("thời tiết và khí hậu", "551.6"),
    ("nước và sự sống", "553.7"), ("năng lượng", "333.79"), ("máy tính và Internet", "004"),
    ("trí tuệ nhân tạo", "006.3"), ("robot", "629.8"), ("những phát minh khoa học", "609"),
    ("các nhà khoa học nổi tiếng", "509.2"), ("đại dương", "551.46"),
    ("rừng nhiệt đới", "577.34"), ("sông Mê Kông", "915.9"), ("Nam Bộ", "915.97"),
    ("Tây Nguyên", "915.97"), ("âm nhạc dân gian", "781.62"), ("hội họa", "750"),
    ("bóng đá", "796.334"), ("cờ vua", "794.1"), ("sức khỏe tuổi học trò", "613"),
    ("dinh dưỡng", "613.2"), ("tuổi dậy thì", "612.6"), ("phòng chống đuối nước", "613.69"),
    ("phòng cháy chữa cháy", "628.92"), ("pháp luật cho học sinh", "349.597"),
    ("quyền trẻ em", "323.352"), ("tiền và tiết kiệm", "332.024"), ("hướng nghiệp", "331.702"),
    ("kỹ năng học tập", "371.3"), ("tiếng Anh giao tiếp", "428"),
    ("văn học dân gian", "398.2"), ("ca dao, tục ngữ Việt Nam", "398.9"),
    ("Thăng Long – Hà Nội", "959.731"), ("Sài Gòn – Gia Định", "959.77"),
    ("Hoàng Sa – Trường Sa", "959.7"), ("các anh hùng dân tộc", "959.7"),
    ("các nước ASEAN", "959"), ("thế giới quanh ta", "500"),
]
TOPIC_TEMPLATES = ["Tìm hiểu {t}", "Hỏi đáp về {t}", "Khám phá {t}", "Những điều kỳ thú về {t}",
                   "Kiến thức phổ thông về {t}", "Em yêu {t}", "Sổ tay {t}"]
STUDY_TEMPLATES = [
    "Bồi dưỡng học sinh giỏi {s} {g}", "Để học tốt {s} {g}", "Bài tập nâng cao {s} {g}",
    "Ôn tập và kiểm tra {s} {g}", "Phương pháp giải bài tập {s} {g}", "Chuyên đề {s} {g}",
    "Hướng dẫn học {s} {g}", "Tuyển tập đề kiểm tra {s} {g}", "Luyện tập {s} {g}",
    "Câu hỏi trắc nghiệm {s} {g}", "Sổ tay kiến thức {s} {g}", "Giải bài tập {s} {g}",
    "Em học giỏi {s} {g}", "Tự luyện {s} {g}", "Kiến thức cơ bản và nâng cao {s} {g}",
    "Tài liệu ôn thi học sinh giỏi {s} {g}", "Thực hành {s} {g}",
]
EXAM_TEMPLATES = {9: "Tuyển chọn đề thi tuyển sinh vào lớp 10 môn {s}",
                  12: "Ôn thi tốt nghiệp THPT môn {s}"}
# Dictionaries and reference works (read in the reading room): title, author, class.
REFERENCE_WORKS = [
    ("Từ điển tiếng Việt", "Hoàng Phê", "495.9223"),
    ("Từ điển Anh – Việt", "Viện Ngôn ngữ học", "423.95922"),
    ("Từ điển Việt – Anh", "Viện Ngôn ngữ học", "495.922321"),
    ("Từ điển thành ngữ và tục ngữ Việt Nam", "Nguyễn Lân", "398.9"),
    ("Hán – Việt từ điển", "Đào Duy Anh", "495.17"),
    ("Từ điển chính tả tiếng Việt", "Hoàng Phê", "495.9221"),
    ("Atlat Địa lí Việt Nam", "Nhiều tác giả", "912.597"),
    ("Từ điển bách khoa Việt Nam", "Hội đồng Quốc gia chỉ đạo biên soạn", "039.95922"),
    ("Từ điển Toán học phổ thông", "Nhiều tác giả", "510.3"),
    ("Từ điển Vật lí phổ thông", "Nhiều tác giả", "530.03"),
    ("Đại Việt sử ký toàn thư", "Ngô Sĩ Liên", "959.7"),
    ("Từ điển từ láy tiếng Việt", "Hoàng Văn Hành", "495.9223"),
]
PROFESSIONAL = [
    ("Hướng dẫn thực hiện Chương trình giáo dục phổ thông 2018 môn {s}", "375"),
    ("Dạy học phát triển năng lực môn {s}", "371.3"),
    ("Kiểm tra, đánh giá theo định hướng phát triển năng lực môn {s}", "371.26"),
]
PROFESSIONAL_GENERAL = [
    ("Nghiệp vụ thư viện trường học", "027.8"),
    ("Hướng dẫn tổ chức hoạt động thư viện trường học theo Thông tư 16/2022/TT-BGDĐT", "027.8"),
    ("Luật Giáo dục năm 2019", "344.597"), ("Kỹ năng quản lý lớp học", "371.102"),
    ("Công tác chủ nhiệm lớp", "371.1"), ("Tâm lý học lứa tuổi học sinh", "155.4"),
    ("Giáo dục kỹ năng sống cho học sinh", "370.11"), ("Văn hóa đọc trong nhà trường", "028.9"),
    ("Ứng dụng công nghệ thông tin trong dạy học", "371.33"),
    ("Đánh giá học sinh theo Thông tư 27/2020/TT-BGDĐT", "371.26"),
]
PROFESSIONAL_MN = [
    ("Chương trình giáo dục mầm non", "372.21"),
    ("Hướng dẫn tổ chức thực hiện Chương trình giáo dục mầm non", "372.21"),
    ("Tuyển tập trò chơi, bài hát, thơ ca, truyện, câu đố theo chủ đề", "372.21"),
    ("Hướng dẫn tổ chức hoạt động cho trẻ {age} tuổi", "372.21"),
    ("Chăm sóc, nuôi dưỡng trẻ mầm non", "649.1"),
]

# Intakes: source, funding, document-number kind.
SOURCES = [
    ("Nhà sách Fahasa", Funding.state_budget, "HĐ"),
    ("Công ty Cổ phần Sách và Thiết bị trường học TP. Hồ Chí Minh", Funding.state_budget, "HĐ"),
    ("Công ty Sách – Thiết bị Giáo dục miền Nam", Funding.state_budget, "HĐ"),
    ("Nhà sách Phương Nam", Funding.socialization, "HĐ"),
    ("Hội cha mẹ học sinh tặng", Funding.donation, "BB"),
    ("Học sinh quyên góp – Ngày hội đọc sách", Funding.donation, "BB"),
    ("Thư viện Khoa học Tổng hợp TP. Hồ Chí Minh tặng", Funding.donation, "BB"),
    ("Phòng Giáo dục và Đào tạo cấp", Funding.state_budget, "PX"),
    ("Quỹ khuyến học địa phương", Funding.socialization, "BB"),
    ("NXB Kim Đồng tặng", Funding.donation, "BB"),
]
EXTRA_LOCATIONS = [  # code, name, kind; the open stacks "KM" come from generate_city
    ("KĐ", "Kho đóng", LocationKind.closed_stack),
    ("PĐ", "Phòng đọc", LocationKind.reading_room),
]
CLASS_SHELF = ("TSL", "Tủ sách lớp học", LocationKind.class_shelf)


# --- Books: metadata depends on (seed, key) only ----------------------------------------


def isbn13(first12):
    """The 13-digit ISBN of 12 digits (check digit: weights 1, 3, modulo 10)."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return first12 + str((10 - total % 10) % 10)


class _MarkSource:
    """What app.catalog.services.author_mark reads from a record."""

    __slots__ = ("main_author", "title")

    def __init__(self, main_author, title):
        self.main_author, self.title = main_author, title


def _weighted(rng, pairs):
    values, weights = zip(*pairs)
    return rng.choices(values, weights=weights, k=1)[0]


@functools.lru_cache(maxsize=8)
def _author_pool(seed):
    rng = random.Random(f"catalogue:{seed}:authors")
    names = set()
    while len(names) < 2500:
        female = rng.random() < 0.5
        family = _weighted(rng, FAMILY_NAMES)
        middle = _weighted(rng, MIDDLE_F if female else MIDDLE_M)
        given = rng.choice(GIVEN_F if female else GIVEN_M)
        names.add(f"{family} {middle} {given}")
    return sorted(names)


def _round(value, step=1000):
    return int(round(value / step)) * step


ROLE_TEXT = {"author": "", "editor": "chủ biên", "translator": "dịch", "illustrator": "minh họa",
             "compiler": "biên soạn"}


@functools.lru_cache(maxsize=400_000)
def book(seed, key):
    """Bibliographic data of one book (a tuple `key` names it): same in every school."""
    rng = random.Random("catalogue:%s:%s" % (seed, "|".join(map(str, key))))
    pool = _author_pool(seed)
    kind = key[0]
    subtitle = edition = series_statement = volume = None
    language, doc = "vie", "STK"
    authors = []  # (name, role)
    edition_no = 0
    if kind == "sgk":  # ("sgk", grade, subject, volume, series index, workbook)
        _k, grade, subject, vol, series_i, workbook = key
        series_name, publisher, _place = TEXTBOOK_SERIES[series_i]
        name = subject
        if subject == "Tiếng Anh":
            series_name = ENGLISH_SERIES[series_i]
        title = f"{'Bài tập ' + subject if workbook else name} {grade}"
        if vol:
            title += f". Tập {vol}"
            volume = f"Tập {vol}"
        series_statement = series_name
        year = rng.randint(FIRST_YEAR[grade], 2025)
        edition_no = year - FIRST_YEAR[grade]
        doc, klass = "SGK", SUBJECT_CLASS[subject]
        chief = pool[zlib.crc32(f"{seed}:{subject}:{series_i}".encode()) % len(pool)]
        authors = [(chief, "editor"), (rng.choice(pool), "editor")]
        pages, size = rng.randint(80, 200), 27
        price = _round(rng.uniform(8_000, 20_000) if workbook else rng.uniform(12_000, 38_000))
        subjects = f"{subject}; Lớp {grade}; Sách giáo khoa"
    elif kind == "gv":  # ("gv", grade, subject, series index): teacher's book
        _k, grade, subject, series_i = key
        series_name, publisher, _place = TEXTBOOK_SERIES[series_i]
        title = f"Sách giáo viên {subject} {grade}"
        series_statement = series_name
        year = rng.randint(FIRST_YEAR[grade], 2025)
        doc, klass = "SNV", SUBJECT_CLASS[subject]
        authors = [(pool[zlib.crc32(f"{seed}:{subject}:{series_i}".encode()) % len(pool)],
                    "editor")]
        pages, size, price = rng.randint(120, 260), 27, _round(rng.uniform(20_000, 60_000))
        subjects = f"{subject}; Lớp {grade}; Sách giáo viên"
    elif kind == "snv":  # ("snv", template index, subject or age, variant, edition)
        _k, i, what, _variant, edition_no = key
        table = PROFESSIONAL_MN if what in (3, 4, 5) else (
            PROFESSIONAL if isinstance(what, str) else PROFESSIONAL_GENERAL)
        template, klass = table[i]
        title = template.format(s=what, age=what)
        publisher = rng.choice(STUDY_PUBLISHERS)
        year = rng.randint(2012, 2025)
        doc = "SNV"
        authors = [(rng.choice(pool), rng.choice(["author", "editor", "compiler"]))]
        pages, size, price = rng.randint(100, 300), 24, _round(rng.uniform(30_000, 120_000))
        subjects = "Nghiệp vụ sư phạm"
    elif kind == "study":  # ("study", template, subject, grade, variant, edition, volume)
        _k, i, subject, grade, _variant, edition_no, vol = key
        template = EXAM_TEMPLATES[grade] if i < 0 else STUDY_TEMPLATES[i]
        title = template.format(s=subject, g=grade)
        if vol:
            title += f". Tập {vol}"
            volume = f"Tập {vol}"
        publisher = rng.choice(STUDY_PUBLISHERS)
        year = rng.randint(2010, 2025)
        klass = SUBJECT_CLASS[subject]
        authors = [(rng.choice(pool), "author")]
        if rng.random() < 0.4:
            authors.insert(0, (rng.choice(pool), "editor"))
        pages, size, price = rng.randint(120, 360), 24, _round(rng.uniform(30_000, 140_000))
        subjects = f"{subject}; Lớp {grade}; Sách tham khảo"
    elif kind == "topic":  # ("topic", template, topic index, variant, edition)
        _k, i, t, _variant, edition_no = key
        topic, klass = TOPICS[t]
        title = TOPIC_TEMPLATES[i].format(t=topic)
        publisher = rng.choice(GENERAL_PUBLISHERS + STUDY_PUBLISHERS)
        year = rng.randint(2005, 2025)
        authors = [(rng.choice(pool), rng.choice(["author", "author", "compiler"]))]
        pages, size, price = rng.randint(80, 320), 21, _round(rng.uniform(25_000, 120_000))
        subjects = topic[0].upper() + topic[1:]
    elif kind == "classic":  # ("classic", index, edition)
        _k, i, edition_no = key
        title, author, klass, genre = CLASSICS[i]
        publisher = rng.choice(["NXB Văn học", "NXB Hội Nhà văn", "NXB Trẻ", "NXB Kim Đồng",
                                "NXB Giáo dục Việt Nam", "NXB Tổng hợp TP. Hồ Chí Minh"])
        year = rng.randint(1995, 2025)
        authors = [(author, "author")]
        if genre == "Thơ" and rng.random() < 0.3:
            authors.append((rng.choice(pool), "compiler"))
        pages, size, price = rng.randint(120, 520), 20, _round(rng.uniform(40_000, 220_000))
        subjects = f"Văn học Việt Nam; {genre}"
        if rng.random() < 0.15:
            subtitle = "Tác phẩm chọn lọc"
    elif kind == "translated":  # ("translated", index, edition)
        _k, i, edition_no = key
        title, author, klass, genre = TRANSLATED[i]
        publisher = rng.choice(["NXB Văn học", "NXB Hội Nhà văn", "NXB Trẻ", "NXB Kim Đồng",
                                "NXB Thế giới", "NXB Dân trí"])
        year = rng.randint(1998, 2025)
        authors = [(author, "author"), (rng.choice(pool), "translator")]
        pages, size, price = rng.randint(150, 700), 20, _round(rng.uniform(60_000, 260_000))
        subjects = f"Văn học nước ngoài; {genre}"
    elif kind == "reader":  # ("reader", index, edition): English graded readers
        _k, i, edition_no = key
        title = GRADED_READERS[i]
        series_statement = "Oxford Bookworms Library"
        language, publisher, place = "eng", "Oxford University Press", "Oxford"
        year = rng.randint(2008, 2024)
        authors = [(rng.choice(["Bassett, Jennifer", "West, Clare", "Escott, John",
                                "Hedge, Tricia"]), "editor")]
        pages, size, price = rng.randint(60, 110), 20, _round(rng.uniform(60_000, 120_000))
        klass, subjects = "428.64", "Tiếng Anh; Truyện đọc"
    elif kind == "lit":  # ("lit", noun, modifier, genre, edition): generated literature
        _k, n, m, g, edition_no = key
        title = f"{LIT_NOUNS[n]} {LIT_MODS[m]}"
        genre, klass = LIT_GENRES[g]
        publisher = rng.choice(GENERAL_PUBLISHERS)
        year = rng.randint(2000, 2025)
        authors = [(rng.choice(pool), "author")]
        pages, size, price = rng.randint(90, 420), 20, _round(rng.uniform(40_000, 180_000))
        subjects = f"Văn học Việt Nam; {genre}"
    elif kind == "reference":  # ("reference", index, edition)
        _k, i, edition_no = key
        title, author, klass = REFERENCE_WORKS[i]
        publisher = rng.choice(["NXB Đà Nẵng", "NXB Giáo dục Việt Nam", "NXB Khoa học xã hội",
                                "NXB Từ điển Bách khoa", "NXB Thế giới"])
        year = rng.randint(2000, 2025)
        authors = [(author, "editor" if author.count(" ") > 1 and rng.random() < 0.5
                    else "author")]
        pages, size, price = rng.randint(400, 1600), 24, _round(rng.uniform(150_000, 480_000))
        subjects = "Từ điển; Tra cứu"
    elif kind == "tale":  # ("tale", tale, series, edition)
        _k, i, s, edition_no = key
        title = TALES[i]
        series_statement = TALE_SERIES[s]
        publisher = rng.choice(CHILDREN_PUBLISHERS)
        year = rng.randint(2008, 2025)
        authors = [(rng.choice(pool), "compiler"), (rng.choice(pool), "illustrator")]
        if rng.random() < 0.5:
            authors.pop()
        pages, size, price = rng.randint(16, 64), 21, _round(rng.uniform(12_000, 45_000))
        klass, subjects, doc = "398.209597", "Truyện cổ tích; Thiếu nhi", "STN"
    elif kind == "volume":  # ("volume", series index, volume number, edition)
        _k, i, n, edition_no = key
        name, author, _count, publisher, klass = VOLUME_SERIES[i]
        title, volume, series_statement = f"{name}. Tập {n}", f"Tập {n}", name
        year = rng.randint(2005, 2025)
        authors = [(author, "author")]
        if "," in author or author == "Fujiko F. Fujio":
            authors.append((rng.choice(pool), "translator"))
        pages, size, price = rng.randint(96, 200), 18, _round(rng.uniform(18_000, 35_000))
        subjects, doc = "Truyện tranh; Thiếu nhi", "STN"
    elif kind == "kid":  # ("kid", template, animal, trait, edition): children's stories
        _k, i, a, t, edition_no = key
        title = KID_TEMPLATES[i].format(a=KID_ANIMALS[a], t=KID_TRAITS[t])
        title = title[0].upper() + title[1:]
        publisher = rng.choice(CHILDREN_PUBLISHERS)
        year = rng.randint(2008, 2025)
        authors = [(rng.choice(pool), "author"), (rng.choice(pool), "illustrator")]
        if rng.random() < 0.4:
            authors.pop()
        pages, size, price = rng.randint(24, 120), 21, _round(rng.uniform(15_000, 60_000))
        klass, subjects, doc = "895.9223", "Truyện thiếu nhi", "STN"
    elif kind == "kidtopic":  # ("kidtopic", template, topic, edition)
        _k, i, t, edition_no = key
        topic, klass = TOPICS[t]
        title = KID_TOPIC_TEMPLATES[i].format(t=topic)
        publisher = rng.choice(CHILDREN_PUBLISHERS)
        year = rng.randint(2005, 2025)
        authors = [(rng.choice(pool), rng.choice(["author", "compiler"]))]
        pages, size, price = rng.randint(32, 160), 21, _round(rng.uniform(20_000, 90_000))
        subjects, doc = f"{topic[0].upper() + topic[1:]}; Thiếu nhi", "STN"
    elif kind == "hero":  # ("hero", person index, edition)
        _k, i, edition_no = key
        title = f"Gương sáng tuổi thơ: {HEROES[i]}" if i % 2 else f"Truyện kể về {HEROES[i]}"
        publisher = rng.choice(CHILDREN_PUBLISHERS)
        year = rng.randint(2005, 2025)
        authors = [(rng.choice(pool), "author")]
        pages, size, price = rng.randint(40, 160), 19, _round(rng.uniform(18_000, 60_000))
        klass, subjects, doc = "920.0597", "Nhân vật lịch sử; Thiếu nhi", "STN"
    elif kind == "preschool":  # ("preschool", index, variant, edition)
        _k, i, _variant, edition_no = key
        title = PRESCHOOL_TITLES[i]
        publisher = rng.choice(CHILDREN_PUBLISHERS + ["NXB Giáo dục Việt Nam"])
        year = rng.randint(2010, 2025)
        authors = [(rng.choice(pool), rng.choice(["author", "compiler"]))]
        pages, size, price = rng.randint(16, 48), 24, _round(rng.uniform(10_000, 35_000))
        klass, subjects, doc = "372.21", "Mầm non; Thiếu nhi", "STN"
    else:
        raise ValueError(key)

    if kind not in ("sgk", "gv") and edition_no:
        year = min(2025, year + 2 * edition_no)
        edition = f"Tái bản lần thứ {edition_no}"
    elif kind == "sgk" and edition_no:
        edition = f"Tái bản lần thứ {edition_no}"
    if kind == "reader":
        pub_digits, place = None, "Oxford"
    else:
        _name, place, pub_digits = PUBLISHER.get(publisher, (publisher, "Hà Nội", "99"))
    isbn = None
    if pub_digits is not None and rng.random() < ISBN_SHARE:
        body = f"978604{pub_digits}"
        body += "".join(str(rng.randrange(10)) for _ in range(12 - len(body)))
        isbn = isbn13(body)
    names = [name for name, _role in authors]
    responsibility = ", ".join(
        f"{name} ({ROLE_TEXT[role]})" if ROLE_TEXT[role] else name for name, role in authors)
    mark = author_mark(_MarkSource(names[0] if names else None, title), "given_name", 3)
    call_number = " / ".join(p for p in (klass, mark) if p) or None
    return {
        "title": title, "subtitle": subtitle, "responsibility": responsibility,
        "edition": edition, "place": place, "publisher": publisher, "year": year,
        "pages": f"{pages} tr.", "size_cm": size, "isbn": isbn, "price": price,
        "language": language, "series_statement": series_statement, "volume": volume,
        "subjects": subjects, "doc": doc, "class_number": klass, "author_mark": mark,
        "call_number": call_number,
        "title_folded": fold(" ".join(filter(None, [title, subtitle])))[:1000],
        "authors_folded": fold(" ".join(names))[:1000],
        "authors": tuple(authors),
        "reading_room": kind == "reference",
    }


# --- Plans ------------------------------------------------------------------------------


def _category_share(levels, table):
    values = [table[{"preschool": "MN", "primary": "TH", "lower_secondary": "THCS",
                     "upper_secondary": "THPT"}[lvl]] for lvl in levels]
    return sum(values) / len(values)


def plan_catalogue(scale=0.01, seed=1, volume=1.0):
    """How big each generated school's library is: pure data, no database.

    `volume` multiplies every library's size (1.0 = realistic; tests use a small volume).
    Returns {'scale', 'seed', 'volume', 'schools': [{'code', 'category', 'levels',
    'is_public', 'records', 'copies'}...], 'records', 'copies', 'big_school'}.
    """
    if volume <= 0:
        raise ValidationError(_l("The volume must be greater than 0."), field="volume")
    city = plan_city(scale, seed)
    schools = []
    for s in city["schools"]:
        rng = random.Random(f"catalogue:{seed}:{s['code']}:size")
        mean = MEAN_RECORDS[s["category"]] * (1.0 if s["is_public"] else NON_PUBLIC_FACTOR)
        spread = math.exp(rng.gauss(-SIZE_SPREAD ** 2 / 2, SIZE_SPREAD))
        records = max(MIN_RECORDS, int(round(mean * volume * spread)))
        copies = int(round(records * rng.uniform(*COPIES_PER_RECORD)))
        schools.append({"code": s["code"], "category": s["category"],
                        "levels": tuple(s["levels"]), "is_public": s["is_public"],
                        "records": records, "copies": copies})
    # One really large library: the largest THPT of the plan.
    thpt = [s for s in schools if s["category"] == "THPT"] or schools
    big = max(thpt, key=lambda s: (s["copies"], s["code"]))
    target = int(round(BIG_SCHOOL_COPIES * volume))
    if big["copies"] < target:
        big["copies"] = target
        big["records"] = int(round(target / sum(COPIES_PER_RECORD) * 2))
    return {"scale": scale, "seed": seed, "volume": volume, "schools": schools,
            "records": sum(s["records"] for s in schools),
            "copies": sum(s["copies"] for s in schools), "big_school": big["code"]}


def _textbook_keys(rng, levels, budget):
    """(sgk keys, teacher's book keys) of the school's grades, within `budget` records."""
    grades = [g for lvl in levels for g in GRADES[lvl]]
    keys, teacher = [], []
    for grade in grades:
        for subject in SUBJECTS[grade]:
            series = [rng.randrange(3)]
            if rng.random() < 0.15:  # a second series kept from an earlier choice
                series.append((series[0] + 1) % 3)
            volumes = (1, 2) if subject in TWO_VOLUMES else (0,)
            for s in series:
                for v in volumes:
                    keys.append(("sgk", grade, subject, v, s, 0))
                    if subject in CORE and rng.random() < 0.5:
                        keys.append(("sgk", grade, subject, v, s, 1))  # workbook
                teacher.append(("gv", grade, subject, s))
    if len(keys) > budget:
        keys = rng.sample(keys, budget)
        keys.sort(key=lambda k: (k[1], k[2], k[3], k[4], k[5]))
    return keys, teacher


def _stk_key(rng, grades, category):
    r = rng.random()
    study_grades = [g for g in grades if g >= 3] or grades
    if study_grades and r < 0.40:
        grade = rng.choice(study_grades)
        subject = rng.choice([s for s in SUBJECTS[grade] if s in CORE])
        template = -1 if grade in EXAM_TEMPLATES and rng.random() < 0.08 else \
            rng.randrange(len(STUDY_TEMPLATES))
        vol = rng.choice((0, 0, 0, 1, 2))
        return ("study", template, subject, grade, rng.randrange(3), rng.randrange(4), vol)
    if r < 0.62:
        return ("topic", rng.randrange(len(TOPIC_TEMPLATES)), rng.randrange(len(TOPICS)),
                rng.randrange(3), rng.randrange(3))
    if r < 0.70:
        return ("classic", rng.randrange(len(CLASSICS)), rng.randrange(5))
    if r < 0.76:
        return ("translated", rng.randrange(len(TRANSLATED)), rng.randrange(4))
    if r < 0.79:
        return ("reference", rng.randrange(len(REFERENCE_WORKS)), rng.randrange(3))
    if r < 0.82 and category != "MN":
        return ("reader", rng.randrange(len(GRADED_READERS)), rng.randrange(2))
    return ("lit", rng.randrange(len(LIT_NOUNS)), rng.randrange(len(LIT_MODS)),
            rng.randrange(len(LIT_GENRES)), rng.randrange(3))


def _stn_key(rng, preschool_share):
    r = rng.random()
    if r < preschool_share:
        return ("preschool", rng.randrange(len(PRESCHOOL_TITLES)), rng.randrange(4),
                rng.randrange(3))
    r = rng.random()
    if r < 0.22:
        return ("tale", rng.randrange(len(TALES)), rng.randrange(len(TALE_SERIES)),
                rng.randrange(3))
    if r < 0.45:
        i = rng.randrange(len(VOLUME_SERIES))
        return ("volume", i, rng.randint(1, VOLUME_SERIES[i][2]), rng.randrange(2))
    if r < 0.65:
        return ("kid", rng.randrange(len(KID_TEMPLATES)), rng.randrange(len(KID_ANIMALS)),
                rng.randrange(len(KID_TRAITS)), rng.randrange(2))
    if r < 0.82:
        return ("kidtopic", rng.randrange(len(KID_TOPIC_TEMPLATES)), rng.randrange(len(TOPICS)),
                rng.randrange(3))
    if r < 0.92:
        return ("hero", rng.randrange(len(HEROES)), rng.randrange(2))
    return ("classic", rng.randrange(len(CLASSICS)), rng.randrange(5))


def _snv_key(rng, levels, grades):
    if "preschool" in levels and (not grades or rng.random() < 0.5):
        i = rng.randrange(len(PROFESSIONAL_MN))
        return ("snv", i, rng.choice((3, 4, 5)), rng.randrange(3), rng.randrange(3))
    if grades and rng.random() < 0.5:
        grade = rng.choice(grades)
        return ("snv", rng.randrange(len(PROFESSIONAL)), rng.choice(SUBJECTS[grade]),
                rng.randrange(3), rng.randrange(3))
    return ("snv", rng.randrange(len(PROFESSIONAL_GENERAL)), None, rng.randrange(3),
            rng.randrange(3))


def _intakes(rng, count):
    start = datetime.date(2008, 1, 1).toordinal()
    days = sorted(rng.randrange(start, LAST_DAY.toordinal()) for _ in range(count - 1))
    days.append(LAST_DAY.toordinal() - rng.randrange(60))  # the last one this autumn
    days.sort()
    out = []
    for n, day in enumerate(days, start=1):
        date = datetime.date.fromordinal(day)
        source, funding, kind = rng.choice(SOURCES)
        if kind == "HĐ":
            number = f"HĐ {rng.randrange(1, 10_000_000):07d}"
        else:
            number = f"{kind} {rng.randint(1, 60):02d}/{date.year}"
        out.append({"register_number": n, "received_on": date, "source": source,
                    "document_number": number, "funding": funding})
    return out


def plan_school(entry, seed):
    """One school's library as plain data, from its plan_catalogue entry.

    Returns {'code', 'locations': [(code, name, kind)], 'intakes': [...], 'records': [...]}
    where each record is {'key', 'book' (the book() dict), 'doc', 'intake' (index),
    'copies': [(location code, status name, note)]}, records in intake order.
    """
    rng = random.Random(f"catalogue:{seed}:{entry['code']}")
    levels = entry["levels"]
    grades = [g for lvl in levels for g in GRADES[lvl]]
    n_records, n_copies = entry["records"], entry["copies"]
    has_class_shelf = "preschool" in levels or "primary" in levels
    locations = list(EXTRA_LOCATIONS) + ([CLASS_SHELF] if has_class_shelf else [])

    # Textbooks (numbered per record) and teacher's books.
    sgk, teacher = ([], [])
    if grades:
        sgk, teacher = _textbook_keys(rng, levels,
                                      int(n_records * TEXTBOOK_RECORD_SHARE))
    n_snv = max(1, int(round(n_records * SNV_SHARE)))
    teacher = rng.sample(teacher, min(len(teacher), n_snv // 2))
    stk_share = _category_share(levels, STK_SHARE)
    preschool_share = 0.5 if levels == ("preschool",) else (0.1 if "preschool" in levels else 0)
    keys = [(k, "SGK") for k in sgk] + [(k, "SNV") for k in teacher]
    seen = set(k for k, _doc in keys)
    n_snv_more = max(0, n_snv - len(teacher))
    while len(keys) < n_records:
        if n_snv_more:
            n_snv_more -= 1
            draw = functools.partial(_snv_key, rng, levels, grades)
        elif rng.random() < stk_share:
            draw = functools.partial(_stk_key, rng, grades, entry["category"])
        else:
            draw = functools.partial(_stn_key, rng, preschool_share)
        key = draw()
        for retry in range(6):  # a school rarely holds the same edition twice
            if key not in seen:
                break
            if retry == 2:  # a small pool is exhausted: something else
                draw = functools.partial(_stk_key, rng, grades, entry["category"])
            key = draw()
        seen.add(key)
        keys.append((key, None))

    # Copies: textbooks take about a quarter of the copies, the others one to a few each.
    n_sgk = len(sgk)
    per_textbook = 0
    if n_sgk:
        per_textbook = max(3, int(round(n_copies * TEXTBOOK_COPY_SHARE / n_sgk)))
    other = len(keys) - n_sgk
    remaining = max(other, n_copies - per_textbook * n_sgk)
    mean_other = remaining / other if other else 1.0
    q = 1 - 1 / mean_other if mean_other > 1 else 0.0

    intakes = _intakes(rng, max(2, int(round(n_copies / 70))))
    years = [i["received_on"].year for i in intakes]
    records = []
    for key, doc in keys:
        b = book(seed, key)
        doc = doc or b["doc"]
        first = bisect.bisect_left(years, b["year"])
        intake = rng.randrange(min(first, len(intakes) - 1), len(intakes))
        if doc == "SGK":
            count = max(1, int(round(per_textbook * rng.uniform(0.6, 1.4))))
        else:
            count = 1
            while count < 12 and rng.random() < q:
                count += 1
        copies = []
        for _c in range(count):
            if doc in ("SGK", "SNV"):
                location = "KĐ"
            elif b["reading_room"]:
                location = "PĐ"
            elif doc == "STN" and has_class_shelf and rng.random() < 0.35:
                location = "TSL"
            elif rng.random() < 0.1:
                location = "PĐ"
            else:
                location = "KM"
            r = rng.random()
            note = None
            if b["reading_room"] and r >= 0.04:
                status = CopyStatus.reading_room_only.name
            elif r < 0.015:
                status = CopyStatus.damaged.name
            elif r < 0.025:
                status = CopyStatus.lost.name
            elif r < 0.04:
                status = CopyStatus.withdrawn.name
                note = (f"Đã thanh lọc theo QĐ số {rng.randint(1, 40):02d}/QĐ-TV ngày "
                        f"{rng.randint(1, 28):02d}/{rng.choice((5, 6, 12)):02d}/"
                        f"{rng.randint(max(b['year'], years[intake]), 2025)}")
            else:
                status = CopyStatus.available.name
            copies.append((location, status, note))
        records.append({"key": key, "book": b, "doc": doc, "intake": intake,
                        "copies": copies})
    records.sort(key=lambda r: r["intake"])  # stable: accession order follows the intakes
    return {"code": entry["code"], "locations": locations, "intakes": intakes,
            "records": records}


# --- Writing ----------------------------------------------------------------------------


RECORD_COLUMNS = ("id", "school_id", "title", "subtitle", "responsibility", "edition", "place",
                  "publisher", "year", "pages", "size_cm", "isbn", "price", "language",
                  "series_statement", "volume", "subjects", "document_type_id", "scheme_id",
                  "class_number", "author_mark", "call_number", "call_number_is_manual",
                  "is_hidden", "title_folded", "authors_folded")
AUTHOR_COLUMNS = ("school_id", "record_id", "name", "role", "is_main", "position")
COPY_COLUMNS = ("school_id", "record_id", "series_id", "sequence_key", "accession_number",
                "accession_label", "barcode", "location_id", "intake_id", "status", "price",
                "funding", "acquisition_source", "note")
INTAKE_COLUMNS = ("id", "school_id", "register_number", "received_on", "source",
                  "document_number", "funding", "note")
COUNTER_COLUMNS = ("school_id", "key", "last_value")
_BOOK_FIELDS = RECORD_COLUMNS[2:17]
GIN_INDEXES = ("ix_record_title_trgm", "ix_record_authors_trgm")  # PostgreSQL only


class _Writer:
    """Bulk rows into a table: COPY on PostgreSQL, executemany elsewhere (same transaction)."""

    def __init__(self, session):
        self.session = session
        self.dialect = session.get_bind().dialect.name
        self.analysed = {}  # table -> rows written by this run when last analysed

    def rows(self, table, columns, rows):
        if not rows:
            return
        conn = self.session.connection()
        if self.dialect == "postgresql":
            raw = conn.connection.driver_connection
            names = ", ".join(f'"{c}"' for c in columns)
            with raw.cursor() as cursor:
                with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            marks = ", ".join("?" for _c in columns)
            names = ", ".join(f'"{c}"' for c in columns)
            sql = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'
            for i in range(0, len(rows), 5000):
                conn.exec_driver_sql(sql, rows[i:i + 5000])

    def analyze(self, tables):
        """PostgreSQL: fresh statistics for tables that grew a lot in this run.

        The foreign-key checks of a bulk COPY run prepared plans; a plan made while a
        referenced table was nearly empty (a sequential scan) stays cached while the table
        grows, and every check then scans the whole table. ANALYZE replaces the statistics
        and invalidates those plans. Each table is analysed again when it has doubled.
        """
        if self.dialect != "postgresql":
            return
        for table, rows in tables.items():
            seen = self.analysed.get(table)
            if seen is None or rows > 2 * seen:
                self.session.execute(text(f'ANALYZE "{table}"'))
                self.analysed[table] = max(rows, 1)

    def reserve_ids(self, table, count):
        """`count` new primary keys of `table`, taken from its sequence (PostgreSQL) or
        after its largest id (SQLite: the transaction already holds the write lock)."""
        if count == 0:
            return []
        if self.dialect == "postgresql":
            return list(self.session.execute(
                text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) "
                     "FROM generate_series(1, :n)"), {"t": table, "n": count}).scalars())
        start = self.session.execute(text(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"')) \
            .scalar() + 1
        return list(range(start, start + count))


def _already_set_up(session, school_ids):
    found = set()
    ids = sorted(school_ids)
    for model in (LibrarySettings, AccessionSeries, Record):
        for i in range(0, len(ids), 500):
            found.update(session.execute(select(model.school_id).where(
                model.school_id.in_(ids[i:i + 500])).distinct()).scalars())
    return found


def generate_catalogue(session, scale=0.01, seed=1, volume=1.0, progress=None, commit=True,
                       chunk_records=CHUNK_RECORDS):
    """Write the generated schools' libraries (see the module docstring).

    The city of the same (scale, seed) must be in the database (`generate_city`). Writes
    one transaction per chunk of schools (about `chunk_records` records) and calls
    `progress(stats)` after each chunk. With commit=False nothing is committed (the caller
    commits; everything is then one transaction). Returns the figures written.
    """
    started = time.perf_counter()
    plan = plan_catalogue(scale, seed, volume)
    codes = [s["code"] for s in plan["schools"]]
    units = {}
    for i in range(0, len(codes), 500):
        for unit in session.execute(select(
                OrgUnit.code, OrgUnit.id, OrgUnit.teaches_preschool, OrgUnit.teaches_primary,
                OrgUnit.teaches_lower_secondary, OrgUnit.teaches_upper_secondary).where(
                OrgUnit.code.in_(codes[i:i + 500]))).all():
            units[unit.code] = unit
    missing = [c for c in codes if c not in units]
    if missing:
        raise ValidationError(
            _l("The generated city is not in this database (the school %(code)s is missing): "
               "generate the city with the same scale and seed first."), code=missing[0])
    for entry in plan["schools"]:
        unit = units[entry["code"]]
        levels = tuple(lvl for lvl, flag in (
            ("preschool", unit.teaches_preschool), ("primary", unit.teaches_primary),
            ("lower_secondary", unit.teaches_lower_secondary),
            ("upper_secondary", unit.teaches_upper_secondary)) if flag)
        if levels != entry["levels"]:
            raise ValidationError(
                _l("The school %(code)s in this database was not generated with this scale and "
                   "seed: nothing was saved."), code=entry["code"])

    doc_types = dict(session.execute(select(DocumentType.code, DocumentType.id)).all())
    scheme_id = session.execute(select(ClassificationScheme.id).where(
        ClassificationScheme.code == "DDC")).scalar()
    done = _already_set_up(session, [units[c].id for c in codes])
    todo = [e for e in plan["schools"] if units[e["code"]].id not in done]
    stats = {"schools": len(todo), "skipped": len(plan["schools"]) - len(todo),
             "schools_total": len(plan["schools"]), "schools_done": 0, "records": 0,
             "authors": 0, "copies": 0, "intakes": 0, "series": 0, "locations": 0,
             "counters": 0, "settings": 0, "big_school": plan["big_school"]}
    writer = _Writer(session)
    chunks, size = [[]], 0
    for entry in todo:
        if size >= chunk_records:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += entry["records"]
    chunks = [c for c in chunks if c]
    # The next chunk is planned (pure Python) in a thread while the database works on
    # this one (the driver releases the GIL while it waits): about a third faster.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        ahead = pool.submit(_plan_chunk, chunks[0], seed) if chunks else None
        try:
            for i in range(len(chunks)):
                plans = ahead.result()
                if i + 1 < len(chunks):
                    ahead = pool.submit(_plan_chunk, chunks[i + 1], seed)
                _write_chunk(session, writer, plans, units, doc_types, scheme_id, stats)
                if commit:
                    session.commit()
                stats["seconds"] = round(time.perf_counter() - started, 1)
                if progress:
                    progress(dict(stats))
            if writer.dialect == "postgresql" and chunks:
                for name in GIN_INDEXES:  # flush the pending lists (see _write_chunk)
                    session.execute(text(
                        "SELECT gin_clean_pending_list(CAST(c.oid AS regclass)) "
                        "FROM pg_class c WHERE c.relname = :n"), {"n": name})
                if commit:
                    session.commit()
        except BaseException:
            if ahead is not None:
                ahead.cancel()
            session.rollback()
            raise
    stats["seconds"] = round(time.perf_counter() - started, 1)
    return stats


def _plan_chunk(entries, seed):
    return [plan_school(e, seed) for e in entries]


def _write_chunk(session, writer, plans, units, doc_types, scheme_id, stats):
    if writer.dialect == "postgresql":
        # Trigram (GIN) indexes: a larger pending list merged in bigger batches makes the
        # record inserts about a third faster; generate_catalogue flushes it at the end.
        session.execute(text("SET LOCAL gin_pending_list_limit = '64MB'"))
        session.execute(text("SET LOCAL work_mem = '64MB'"))
    ids = {p["code"]: units[p["code"]].id for p in plans}
    # Library settings (this first write also takes SQLite's write lock).
    session.execute(insert(LibrarySettings.__table__), [
        {"school_id": ids[p["code"]], "scheme_id": scheme_id,
         "author_mark_rule": AuthorMarkRule.given_name,
         "author_mark_length": 3, "barcode_prefix": p["code"]} for p in plans])
    series_t = AccessionSeries.__table__
    series_rows = [
        {"school_id": ids[p["code"]], "code": code, "name": name, "prefix": prefix,
         "separator": "-", "padding": 5, "is_textbook": textbook}
        for p in plans for code, name, prefix, textbook in DEFAULT_SERIES]
    series = {}
    for row in session.execute(insert(series_t).returning(
            series_t.c.id, series_t.c.school_id, series_t.c.code,
            sort_by_parameter_order=True), series_rows):
        series[(row.school_id, row.code)] = row.id
    session.execute(insert(Location.__table__), [
        {"school_id": ids[p["code"]], "code": code, "name": name, "kind": kind,
         "is_active": True, "note": None} for p in plans for code, name, kind in p["locations"]])
    locations = {(s, c): i for i, s, c in session.execute(select(
        Location.id, Location.school_id, Location.code).where(
        Location.school_id.in_(list(ids.values())))).all()}

    intake_ids = writer.reserve_ids("intake", sum(len(p["intakes"]) for p in plans))
    record_ids = writer.reserve_ids("record", sum(len(p["records"]) for p in plans))
    intake_rows, record_rows, author_rows, copy_rows, counter_rows = [], [], [], [], []
    next_intake, next_record = iter(intake_ids), iter(record_ids)
    for p in plans:
        sid, code = ids[p["code"]], p["code"]
        intake_of = []
        for i in p["intakes"]:
            iid = next(next_intake)
            intake_of.append((iid, i["source"], i["funding"].name))
            intake_rows.append((iid, sid, i["register_number"], i["received_on"].isoformat(),
                                i["source"], i["document_number"], i["funding"].name, None))
        counter_rows.append((sid, "intake", len(p["intakes"])))
        last = {}  # series code -> last accession number (non-textbook series)
        for r in p["records"]:
            rid = next(next_record)
            b, doc = r["book"], r["doc"]
            series_id = series[(sid, doc)]
            hidden = all(status == "withdrawn" for _l, status, _n in r["copies"])
            record_rows.append((rid, sid) + tuple(b[f] for f in _BOOK_FIELDS) + (
                doc_types.get(doc), scheme_id, b["class_number"], b["author_mark"],
                b["call_number"], False, hidden, b["title_folded"], b["authors_folded"]))
            for pos, (name, role) in enumerate(b["authors"]):
                author_rows.append((sid, rid, name, role, pos == 0, pos))
            iid, source, funding = intake_of[r["intake"]]
            textbook = doc == "SGK"
            number = 0 if textbook else last.get(doc, 0)
            for location, status, note in r["copies"]:
                number += 1
                if textbook:
                    label = f"SGK-{rid}.{number:03d}"
                else:
                    label = f"{doc}-{number:05d}"
                copy_rows.append((sid, rid, series_id, rid if textbook else 0, number, label,
                                  code + label.replace("-", ""), locations[(sid, location)],
                                  iid, status, b["price"], funding, source, note))
            if textbook:
                counter_rows.append((sid, f"series:{series_id}:{rid}", number))
            else:
                last[doc] = number
        for doc, number in last.items():
            counter_rows.append((sid, f"series:{series[(sid, doc)]}:0", number))
    writer.rows("intake", INTAKE_COLUMNS, intake_rows)
    writer.rows("record", RECORD_COLUMNS, record_rows)
    # Before the rows that reference them (see _Writer.analyze).
    writer.analyze({"org_unit": 0, "location": stats["locations"] + len(locations),
                    "accession_series": stats["series"] + len(series_rows),
                    "intake": stats["intakes"] + len(intake_rows),
                    "record": stats["records"] + len(record_rows)})
    writer.rows("record_author", AUTHOR_COLUMNS, author_rows)
    writer.rows("copy", COPY_COLUMNS, copy_rows)
    writer.rows("counter", COUNTER_COLUMNS, counter_rows)
    session.flush()
    stats["schools_done"] += len(plans)
    stats["settings"] += len(plans)
    stats["series"] += len(series_rows)
    stats["locations"] += sum(len(p["locations"]) for p in plans)
    stats["intakes"] += len(intake_rows)
    stats["records"] += len(record_rows)
    stats["authors"] += len(author_rows)
    stats["copies"] += len(copy_rows)
    stats["counters"] += len(counter_rows)
