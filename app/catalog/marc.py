"""MARC 21 for the catalogue: read ISO 2709 and MARCXML, map to records, build and write.

Pure functions, no database: `app.catalog.marc_import` uses them to import and export.

- `read_marc(data, filename)` reads a whole file (ISO 2709 in UTF-8 or MARC-8, or
  MARCXML) into Unicode pymarc records, one `MarcEntry` per readable record, and a list of
  `Problem`s for what could not be read (with the record's position in the file, and its
  001/245 when they can be salvaged). A record is never half-read: it is either an entry
  (possibly with warnings) or a problem.
- `record_fields(record)` maps a bibliographic record (pymarc Record or its `as_dict()`)
  to the columns of `Record`; `item_fields(record)` finds the copies in 852/949/952.
- `to_marc_dict(...)` / `to_marc(...)` build the MARC of a record for export: the stored
  original when the record was imported (fields the school edited are rewritten, untouched
  ones stay byte for byte), a complete record when it was catalogued in the application.
- `write_iso2709(records)` / `write_marcxml(records)` serialise (UTF-8).

Encoding decisions (see tests/test_marc.py):
- leader/09 'a' is UTF-8; blank is MARC-8, converted to Unicode. A record flagged MARC-8
  whose bytes are in fact valid UTF-8 (and carry no MARC-8 escape) is read as UTF-8 with a
  warning (common in exports from systems that forget the flag).
- Bytes that are not valid UTF-8 are replaced by U+FFFD and the record is imported with a
  warning naming the fields, so that the librarian can check them; characters that are not
  valid MARC-8 likewise (pymarc replaces them by a space).
"""
import dataclasses
import datetime
import functools
import hashlib
import json
import re
import unicodedata
import warnings
from decimal import Decimal
from xml.parsers import expat
from xml.sax.saxutils import escape as _xml_escape

import pymarc
from pymarc import Field, Indicators, Subfield
from pymarc.exceptions import (
    BaseAddressInvalid,
    BaseAddressNotFound,
    NoFieldsFound,
    RecordDirectoryInvalid,
    RecordLeaderInvalid,
)
from pymarc.marc8 import MARC8ToUnicode

from app.catalog.models import ROLE_WORDS, AuthorRole
from app.core.enums import N_

ITEM_TAGS = ("852", "949", "952")
_ITEM_TAG_SET = frozenset(ITEM_TAGS)
FIELD_TERMINATOR = b"\x1e"
RECORD_TERMINATOR = b"\x1d"
SUBFIELD_DELIMITER = b"\x1f"
MARCXML_NS = "http://www.loc.gov/MARC21/slim"
MARCXML_SCHEMA = ("http://www.loc.gov/MARC21/slim "
                  "http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd")

# leader/06 values that are not bibliographic records (MARC 21 authority, holdings,
# classification and community information formats).
NOT_BIBLIOGRAPHIC = {
    "z": N_("This is an authority record, not a bibliographic record: it is not imported."),
    "u": N_("This is a holdings record, not a bibliographic record: it is not imported."),
    "v": N_("This is a holdings record, not a bibliographic record: it is not imported."),
    "x": N_("This is a holdings record, not a bibliographic record: it is not imported."),
    "y": N_("This is a holdings record, not a bibliographic record: it is not imported."),
    "w": N_("This is a classification record, not a bibliographic record: it is not "
            "imported."),
    "q": N_("This is a community information record, not a bibliographic record: it is not "
            "imported."),
}


# --- Problems -----------------------------------------------------------------------------

@dataclasses.dataclass
class Problem:
    """Something the librarian must know about a file or one of its records.

    `message` is an English msgid translated when shown (`text()`), with `params`.
    level "error": the record (or the file) is not imported; "warning": imported, check it.
    """

    message: str
    params: dict = dataclasses.field(default_factory=dict)
    position: int = None  # 1-based order of the record in the file; None: the whole file
    control_number: str = None  # 001
    title: str = None  # 245 $a
    level: str = "error"

    def text(self):
        from flask_babel import gettext

        message = gettext(self.message, **self.params)
        if self.position is None:
            return message
        return f"{record_label(self.position, self.control_number, self.title)}: {message}"

    def as_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**data)


def record_label(position, control_number=None, title=None):
    """'Record 5 (001 ocm123, “Pride and prejudice”)', translated."""
    from flask_babel import gettext

    title = _shorten(title, 70) if title else None
    if control_number and title:
        return gettext("Record %(n)d (001 %(id)s, “%(title)s”)", n=position,
                       id=control_number, title=title)
    if control_number:
        return gettext("Record %(n)d (001 %(id)s)", n=position, id=control_number)
    if title:
        return gettext("Record %(n)d (“%(title)s”)", n=position, title=title)
    return gettext("Record %(n)d", n=position)


def _shorten(text, size):
    text = " ".join(str(text).split())
    return text if len(text) <= size else text[: size - 1] + "…"


class MarcEntry:
    """One readable record of a file: its Unicode MARC as a pymarc Record (`record`), as
    pymarc's as_dict() form (`as_dict()`, what the importer stores) and by tag (`index()`,
    what the mapping reads; made by the reader when it can, at no extra pass)."""

    __slots__ = ("position", "warnings", "_dict", "_record", "_index")

    def __init__(self, position, record=None, warnings=None, data=None, index=None):
        self.position = position
        self.warnings = warnings or []
        self._record = record
        self._dict = data
        self._index = index

    def index(self):
        if self._index is None:
            self._index = _Fields(self._record if self._dict is None else self._dict)
        return self._index

    @property
    def record(self):
        if self._record is None:
            self._record = dict_to_record(self._dict)
        return self._record

    def as_dict(self):
        if self._dict is None:
            self._dict = self._record.as_dict()
        return self._dict

    @property
    def control_number(self):
        for value in self.index().get("001"):
            if isinstance(value, str):
                return value.strip() or None
        return None

    @property
    def title(self):
        for value in self.index().get("245"):
            if isinstance(value, tuple):
                for code, text in value[2]:
                    if code == "a":
                        return _clean(text)
        return None


# --- Reading ------------------------------------------------------------------------------

def detect_format(data):
    """'iso2709', 'marcxml' or None (with the problem) from the first bytes of a file."""
    if not data or not data.strip():
        return None, Problem(N_("The file is empty."))
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<") or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "marcxml", None
    if len(head) >= 5 and head[:5].isdigit():
        return "iso2709", None
    if head.startswith(b"=LDR"):
        return None, Problem(N_("This is a MarcEdit text file (.mrk), not MARC: save it as "
                                "MARC (.mrc) in MarcEdit and import that file."))
    start = head[:20].decode("utf-8", "replace")
    start = "".join(c if c.isprintable() else "·" for c in start)
    return None, Problem(N_("The file is neither an ISO 2709 MARC file nor MARCXML (it "
                            "starts with “%(start)s”)."), {"start": start})


def read_marc(data, filename=None):
    """(entries, problems) of a MARC file given as bytes. Never raises on bad data."""
    kind, problem = detect_format(data)
    if kind == "marcxml":
        return _read_marcxml(data)
    if kind == "iso2709":
        return _read_iso2709(data)
    return [], [problem]


class _Flag:
    """Passed to pymarc's MARC-8 converter as `quiet`: stays quiet and remembers that the
    converter met a character it could not map (it writes a space instead)."""

    __slots__ = ("raised",)

    def __init__(self):
        self.raised = False

    def __bool__(self):
        self.raised = True
        return True


_WHITESPACE = b" \t\r\n\x00\x1a"


def _read_iso2709(data):
    entries, problems = [], []
    size = len(data)
    pos = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    n = 0
    while pos < size:
        # Newlines or padding between records (or at the end) are not records.
        while pos < size and data[pos] in _WHITESPACE:
            pos += 1
        if pos >= size:
            break
        n += 1
        head = data[pos:pos + 5]
        if len(head) < 5 or not head.isdigit():
            end = data.find(RECORD_TERMINATOR, pos)
            chunk = data[pos:] if end < 0 else data[pos:end + 1]
            problems.append(_problem_for(chunk, n, N_(
                "The record length (leader/00-04 “%(value)s”) is not a number: the record "
                "is skipped."), value=_printable(head)))
            pos = size if end < 0 else end + 1
            continue
        length = int(head)
        chunk = data[pos:pos + length]
        if length < 25:
            end = data.find(RECORD_TERMINATOR, pos)
            chunk = data[pos:] if end < 0 else data[pos:end + 1]
            problems.append(_problem_for(chunk, n, N_(
                "The record length in the leader (%(length)d) is too small: the record is "
                "skipped."), length=length))
            pos = size if end < 0 else end + 1
            continue
        if len(chunk) < length:
            problems.append(_problem_for(chunk, n, N_(
                "The record is truncated: the file ends %(missing)d bytes before the end of "
                "the record."), missing=length - len(chunk)))
            break
        if chunk[-1:] != RECORD_TERMINATOR:
            end = data.find(RECORD_TERMINATOR, pos)
            actual = (size if end < 0 else end + 1) - pos
            problems.append(_problem_for(data[pos:pos + actual], n, N_(
                "The record does not end where its leader says (%(length)d bytes; the "
                "end-of-record mark is at byte %(actual)d): the record is skipped."),
                length=length, actual=actual))
            pos = size if end < 0 else end + 1
            continue
        pos += length
        entry, problem = _decode_iso2709(chunk, n)
        if problem is not None:
            problems.append(problem)
        else:
            entries.append(entry)
    if not entries and not problems:
        problems.append(Problem(N_("The file contains no MARC record.")))
    return entries, problems


def _printable(raw):
    return "".join(c if c.isprintable() else "·" for c in raw.decode("latin-1"))


def _problem_for(chunk, position, message, **params):
    control, title = _salvage_ids(chunk)
    return Problem(message, params, position, control, title)


def _salvage_ids(chunk):
    """001 and 245 $a of a damaged record, when its directory can still be read."""
    control = title = None
    try:
        dir_end = chunk.find(FIELD_TERMINATOR, 24)
        if dir_end < 0:
            return None, None
        base = int(chunk[12:17]) if chunk[12:17].isdigit() else 0
        if not 24 < base < len(chunk) or chunk[base - 1:base] != FIELD_TERMINATOR:
            base = dir_end + 1
        directory = chunk[24:dir_end]
        for i in range(0, len(directory) - 11, 12):
            entry = directory[i:i + 12]
            if not entry.isdigit():
                break
            tag = entry[:3]
            length, offset = int(entry[3:7]), int(entry[7:12])
            value = chunk[base + offset:base + offset + length].rstrip(FIELD_TERMINATOR)
            if tag == b"001" and control is None and len(value) <= 40:
                control = _printable_text(value.decode("utf-8", "replace")) or None
            elif tag == b"245" and title is None:
                for part in value.split(SUBFIELD_DELIMITER)[1:]:
                    if part[:1] == b"a":
                        title = _clean(_printable_text(part[1:].decode("utf-8", "replace")))
                        break
            if control and title:
                break
    except Exception:  # salvage is best effort
        return control, title
    return control, title


def _printable_text(text):
    return "".join(c for c in text if c.isprintable()).strip()


def _decode_iso2709(chunk, position):
    """(MarcEntry, None) or (None, Problem) for one framed record."""
    leader = chunk[:24]
    if not leader.isascii():
        return None, _problem_for(chunk, position, N_(
            "The leader contains characters that are not allowed: the record is skipped."))
    warnings_ = []
    odd_codes = re.search(rb"\x1f[\x80-\xff]", chunk) is not None
    if not odd_codes:
        try:
            entry = _decode_simple(chunk, leader, position)
        except ValueError:  # a leader or directory that is not numeric: see below
            entry = None
        if entry is not None:
            return entry, None
    try:
        fields = None if odd_codes else _split_fields(chunk)
    except Exception:
        fields = None
    if fields is None:
        # Not a simple well-formed record: pymarc reads it (its rules for missing or extra
        # indicators and odd subfield codes) or says what is wrong.
        try:
            with warnings.catch_warnings():  # odd subfield codes: reported below
                warnings.simplefilter("ignore")
                raw = pymarc.Record(chunk, to_unicode=False)
        except (BaseAddressInvalid, BaseAddressNotFound):
            return None, _problem_for(chunk, position, N_(
                "The base address of data in the leader (leader/12-16) is wrong: the record "
                "is skipped."))
        except (RecordDirectoryInvalid, ValueError, UnicodeDecodeError):
            return None, _problem_for(chunk, position, N_(
                "The directory of fields is damaged: the record is skipped."))
        except NoFieldsFound:
            return None, _problem_for(chunk, position, N_(
                "The record has no fields: it is skipped."))
        except RecordLeaderInvalid:
            return None, _problem_for(chunk, position, N_(
                "The leader is invalid: the record is skipped."))
        except Exception as error:  # anything else pymarc may raise on bad bytes
            return None, _problem_for(chunk, position, N_(
                "The record could not be read (%(detail)s): it is skipped."),
                detail=type(error).__name__)
        fields = [(f.tag, f.data) if f.control_field else
                  (f.tag, f.indicator1, f.indicator2, [(s.code, s.value) for s in f.subfields])
                  for f in raw.fields]
        if odd_codes:
            warnings_.append(N_("A subfield code is not a letter or digit: it was read as "
                                "the nearest letter."))
    utf8 = chunk[9:10] == b"a"
    if not utf8:
        body = chunk[int(chunk[12:17]):]
        if not body.isascii() and b"\x1b" not in body:
            try:
                body.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                utf8 = True
                warnings_.append(_UTF8_FLAGGED_MARC8)
    bad = []
    out = []
    append = out.append
    for field in fields:
        tag = field[0]
        if len(field) == 2:
            value = field[1]
            if value.isascii():
                text = value.decode("ascii")
            elif utf8:
                text = _utf8(value, tag, bad)
            else:
                text = value.decode("latin-1")  # as pymarc does for MARC-8 control fields
            append({tag: text})
            continue
        if len(field) == 3:  # (tag, None, raw bytes "ii\x1fa...\x1fb...")
            raw = field[2]
            if utf8 or (raw.isascii() and b"\x1b" not in raw):
                text = raw.decode("ascii") if raw.isascii() else _utf8(raw, tag, bad)
                parts = text.split("\x1f")
                append({tag: {"ind1": parts[0][0], "ind2": parts[0][1],
                              "subfields": [{p[0]: p[1:]} for p in parts[1:] if p]}})
                continue
            parts = raw.split(SUBFIELD_DELIMITER)
            indicators = parts[0].decode("ascii")
            field = (tag, indicators[0], indicators[1],
                     [(p[:1].decode("ascii"), p[1:]) for p in parts[1:] if p])
        plain = []
        for code, value in field[3]:
            if value.isascii() and b"\x1b" not in value:
                text = value.decode("ascii")
            elif utf8:
                text = _utf8(value, tag, bad)
            else:
                text = _marc8(value, tag, bad)
            plain.append({code: text})
        append({tag: {"ind1": field[1], "ind2": field[2], "subfields": plain}})
    if bad:
        tags = ", ".join(sorted(set(bad)))
        if utf8:
            warnings_.append((N_("Bytes that are not valid UTF-8 in field(s) %(tags)s were "
                                 "replaced by “�”: check the text."), {"tags": tags}))
        else:
            warnings_.append((N_("Characters that are not valid MARC-8 in field(s) %(tags)s "
                                 "were replaced: check the text."), {"tags": tags}))
    # The record is Unicode from now on (its original encoding is not kept).
    leader_str = leader.decode("ascii")
    leader_str = leader_str[:9] + "a" + leader_str[10:]
    entry = MarcEntry(position, data={"leader": leader_str, "fields": out})
    if warnings_:
        entry.warnings = [_as_problem(w, entry) for w in warnings_]
    return entry, None


_UTF8_FLAGGED_MARC8 = N_("The leader says MARC-8 (leader/09 blank) but the text is UTF-8: it "
                         "was read as UTF-8.")


def _decode_simple(chunk, leader, position):
    """The MarcEntry of the usual record, or None for anything else (the general path of
    _decode_iso2709 then reads it, with the same result): UTF-8 (or ASCII without MARC-8
    escapes) that is valid throughout, fields one after the other in the data, in
    directory order, two ASCII indicators per data field. Decodes the data at once and
    builds the index by tag with the as_dict() form (the mapping reads the index)."""
    base = int(chunk[12:17])
    directory = chunk[24:base - 1]
    count, rest = divmod(len(directory), 12)
    if base <= 24 or base >= len(chunk) or rest or not count or chunk[base - 1] != 0x1E \
            or not directory.isdigit():
        return None
    body = chunk[base:-1]  # the fields, each ending with a field terminator
    raw_fields = body.split(FIELD_TERMINATOR)
    if len(raw_fields) != count + 1 or raw_fields[-1]:
        return None
    offset = 0
    for i in range(count):
        entry = directory[i * 12:i * 12 + 12]
        length = int(entry[3:7])
        if int(entry[7:12]) != offset or len(raw_fields[i]) + 1 != length:
            return None
        offset += length
    warnings_ = []
    if chunk[9:10] != b"a" and not body.isascii():
        if b"\x1b" in body:
            return None  # MARC-8
        warnings_.append(_UTF8_FLAGGED_MARC8)
    elif chunk[9:10] != b"a" and b"\x1b" in body:
        return None  # MARC-8 escapes in ASCII
    try:
        texts = body.decode("utf-8").split("\x1e")
    except UnicodeDecodeError:
        return None  # replaced field by field, with a warning naming them
    out = []
    tags = {}
    for i in range(count):
        tag = directory[i * 12:i * 12 + 3].decode("ascii")
        text = texts[i]
        if tag < "010":
            out.append({tag: text})
            value = text
        else:
            parts = text.split("\x1f")
            indicators = parts[0]
            if len(indicators) != 2 or not indicators.isascii():
                return None
            subfields = [(p[0], p[1:]) for p in parts[1:] if p]
            out.append({tag: {"ind1": indicators[0], "ind2": indicators[1],
                              "subfields": [{code: v} for code, v in subfields]}})
            value = (indicators[0], indicators[1], subfields)
        same = tags.get(tag)
        if same is None:
            tags[tag] = [value]
        else:
            same.append(value)
    leader_str = leader.decode("ascii")
    leader_str = leader_str[:9] + "a" + leader_str[10:]
    entry = MarcEntry(position, data={"leader": leader_str, "fields": out},
                      index=_Fields.of(leader_str, tags))
    if warnings_:
        entry.warnings = [_as_problem(w, entry) for w in warnings_]
    return entry


def _split_fields(chunk):
    """Fields of a well-formed record, read as pymarc reads them: (tag, data) for control
    fields, (tag, None, data) for data fields (indicators, then subfields); None when
    anything is unusual (pymarc then decides)."""
    base = int(chunk[12:17])
    if base <= 24 or base >= len(chunk):
        return None
    directory = chunk[24:base - 1]
    if len(directory) % 12 or not directory or chunk[base - 1] != 0x1E:
        return None
    fields = []
    append = fields.append
    for i in range(0, len(directory), 12):
        entry = directory[i:i + 12]
        if not entry.isdigit():
            return None
        tag = entry[:3].decode("ascii")
        start = base + int(entry[7:12])
        data = chunk[start:start + int(entry[3:7]) - 1]
        if tag < "010":
            append((tag, data))
            continue
        cut = data.find(SUBFIELD_DELIMITER)
        indicators = data if cut < 0 else data[:cut]
        if len(indicators) != 2 or not indicators.isascii():
            return None
        append((tag, None, data))
    return fields or None


def _as_problem(warning, entry):
    message, params = warning if isinstance(warning, tuple) else (warning, {})
    data = entry.as_dict()
    return Problem(message, params, entry.position, control_number(data), raw_title(data),
                   level="warning")


def _utf8(value, tag, bad):
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        bad.append(tag)
        return value.decode("utf-8", "replace")


def _marc8(value, tag, bad):
    flag = _Flag()
    try:
        text = MARC8ToUnicode(quiet=flag).translate(value)
    except (IndexError, TypeError, KeyError, ValueError):
        bad.append(tag)
        return value.decode("latin-1")
    if flag.raised:
        bad.append(tag)
    return text


# --- MARCXML --------------------------------------------------------------------------

class _MarcXmlReader:
    """Namespace-tolerant MARCXML reader keeping each record's position and line; a
    malformed record (a field without a tag...) is reported, the others are kept.

    Expat callbacks build each record's as_dict() form and its index by tag directly (as
    pymarc would give them: tags normalised, a tag below 010 is a control field whatever
    the element), without the SAX layer and pymarc objects: three times faster.
    """

    def __init__(self):
        self.entries, self.problems = [], []
        self.count = 0
        self.parser = None
        self.record = None  # [leader, fields (as_dict), tags (index)] of the open record
        self.field = None  # [tag, is control, ind1, ind2, subfields, data] of the open field
        self.code = None
        self.broken = None
        self.text = []
        self.line = None
        self.names = {}

    def read(self, data):
        parser = self.parser = expat.ParserCreate(None, " ")
        parser.buffer_text = True  # a text in one call, not one per line or entity
        parser.StartElementHandler = self.start
        parser.EndElementHandler = self.end
        parser.CharacterDataHandler = self.text.append  # one list, cleared at each element
        parser.ExternalEntityRefHandler = lambda *args: 1  # never loaded
        problems = []
        try:
            parser.Parse(data, True)
        except expat.ExpatError as error:
            problems.append(Problem(
                N_("The XML is malformed at line %(line)d, column %(column)d (%(reason)s): the "
                   "rest of the file, from record %(n)d on, could not be read."),
                {"line": error.lineno or 0, "column": error.offset or 0,
                 "reason": expat.ErrorString(error.code),
                 "n": self.count + (0 if self.record is not None else 1)}))
        if self.count == 0 and not problems:
            problems.append(Problem(N_("The XML file contains no MARCXML record (no <record> "
                                       "element).")))
        return self.entries, self.problems + problems

    def local(self, name):
        """'uri record' -> 'record' (names are "uri local" in namespaces), remembered."""
        local = self.names.get(name)
        if local is None:
            parts = name.split()
            local = self.names[name] = parts[1] if len(parts) > 1 else name
        return local

    def start(self, name, attrs):
        element = self.names.get(name) or self.local(name)
        self.text.clear()
        if element == "record":
            self.count += 1
            self.record = [_DEFAULT_LEADER, [], {}]
            self.broken = None
            self.line = self.parser.CurrentLineNumber
            return
        if self.record is None or self.broken:
            return
        values = {}
        names = self.names
        for key, value in attrs.items():
            values[names.get(key) or self.local(key)] = value
        if element == "controlfield":
            tag = values.get("tag")
            if not tag:
                self.broken = N_("A control field has no tag (XML line %(line)d): the record "
                                 "is skipped.")
                return
            self.field = _xml_field(tag, " ", " ")
        elif element == "datafield":
            tag = values.get("tag")
            if not tag:
                self.broken = N_("A data field has no tag (XML line %(line)d): the record is "
                                 "skipped.")
                return
            self.field = _xml_field(tag, (values.get("ind1") or " ")[:1],
                                    (values.get("ind2") or " ")[:1])
        elif element == "subfield":
            code = values.get("code")
            if not code:
                self.broken = N_("A subfield has no code (XML line %(line)d): the record is "
                                 "skipped.")
                return
            self.code = code[:1]

    def end(self, name):
        element = self.names.get(name) or self.local(name)
        text = "".join(self.text)
        self.text.clear()
        record = self.record
        if element == "record" and record is not None:
            self.record = None
            leader, fields, tags = record
            if self.broken:
                self.problems.append(Problem(self.broken, {"line": self.line or 0},
                                             self.count, _first_control(tags),
                                             _first_title(tags)))
                return
            if not fields:
                self.problems.append(Problem(N_("The record has no fields: it is skipped."),
                                             {}, self.count))
                return
            self.entries.append(MarcEntry(self.count, data={"leader": leader, "fields": fields},
                                          index=_Fields.of(leader, tags)))
            return
        if record is None or self.broken:
            return
        field = self.field
        if element == "leader":
            record[0] = text if len(text) == 24 else (text + " " * 24)[:24]
        elif element == "controlfield" and field is not None:
            if field[1]:
                field[5] = text
            self._add(field)
        elif element == "datafield" and field is not None:
            self._add(field)
        elif element == "subfield" and field is not None and self.code:
            if not field[1]:  # a control field has no subfields
                field[4].append((self.code, text))
            self.code = None

    def _add(self, field):
        tag, control, ind1, ind2, subfields, data = field
        if control:
            self.record[1].append({tag: data})
            value = data
        else:
            self.record[1].append({tag: {"ind1": ind1, "ind2": ind2,
                                         "subfields": [{c: v} for c, v in subfields]}})
            value = (ind1, ind2, subfields)
        self.record[2].setdefault(tag, []).append(value)
        self.field = None


_DEFAULT_LEADER = str(pymarc.Record().leader)  # a record without <leader>, as pymarc has it


def _xml_field(tag, ind1, ind2):
    """An open field, its tag as pymarc normalises it ("1" -> "001")."""
    if tag.isdigit():
        tag = tag if len(tag) == 3 else f"{int(tag):03}"
    return [tag, tag < "010" and tag.isdigit(), ind1, ind2, [], None]


def _first_control(tags):
    values = tags.get("001")
    return values[0] if values else None


def _first_title(tags):
    for value in tags.get("245", ()):
        if isinstance(value, tuple):
            for code, text in value[2]:
                if code == "a":
                    if text:
                        return _clean(text)
                    break
    return None


def _xml_control(record):
    fields = record.get_fields("001")
    return fields[0].data if fields else None


def _xml_title(record):
    for field in record.get_fields("245"):
        value = field.get("a")
        if value:
            return _clean(value)
    return None


def _read_marcxml(data):
    return _MarcXmlReader().read(data)


# --- Access to a record's fields ----------------------------------------------------

class _Fields:
    """Fields of a record by tag, from a pymarc Record or its as_dict(): control fields as
    strings, data fields as (ind1, ind2, [(code, value), ...])."""

    __slots__ = ("leader", "tags")

    def __init__(self, record):
        tags = {}
        if isinstance(record, dict):
            self.leader = str(record.get("leader") or " " * 24)
            for item in record.get("fields", ()):
                for tag, value in item.items():
                    if isinstance(value, str):
                        tags.setdefault(tag, []).append(value)
                    else:
                        tags.setdefault(tag, []).append((
                            value.get("ind1", " "), value.get("ind2", " "),
                            [next(iter(s.items())) for s in value.get("subfields", ())]))
        else:
            self.leader = str(record.leader)
            for field in record.fields:
                if field.control_field:
                    tags.setdefault(field.tag, []).append(field.data)
                else:
                    tags.setdefault(field.tag, []).append((
                        field.indicator1, field.indicator2,
                        [(s.code, s.value) for s in field.subfields]))
        self.tags = tags

    @classmethod
    def of(cls, leader, tags):
        index = cls.__new__(cls)
        index.leader, index.tags = leader, tags
        return index

    def get(self, tag):
        return self.tags.get(tag, ())

    def control(self, tag):
        values = self.tags.get(tag)
        return values[0] if values and isinstance(values[0], str) else None

    def first(self, tag, code):
        for value in self.tags.get(tag, ()):
            if isinstance(value, tuple):
                for c, v in value[2]:
                    if c == code and v and v.strip():
                        return v
        return None


def index_fields(record):
    """A record's fields by tag, to map one record several times without re-reading it."""
    return _Fields(record)


def control_number(record):
    fields = record.get("fields", ()) if isinstance(record, dict) else None
    if fields is None:
        return _xml_control(record)
    for item in fields:
        value = item.get("001")
        if isinstance(value, str):
            return value.strip() or None
    return None


def raw_title(record):
    if not isinstance(record, dict):
        return _xml_title(record)
    for item in record.get("fields", ()):
        value = item.get("245")
        if isinstance(value, dict):
            for sub in value.get("subfields", ()):
                if "a" in sub:
                    return _clean(sub["a"])
    return None


# --- Mapping to the columns of a record -------------------------------------------------

_TRAILING = re.compile(r"[\s/:;,=+]+$")
_TRAILING_CHARS = frozenset("/:;,=+")
_ABBREVIATIONS = {"ed", "eds", "tr", "trans", "etc", "jr", "sr", "dr", "st", "co", "inc",
                  "ltd", "mr", "mrs", "ms", "comp", "ill", "illus", "pub", "nxb", "tp", "vol",
                  "no", "p", "pp", "tr", "ca", "c"}

LIMITS = {"title": 500, "subtitle": 500, "responsibility": 500, "edition": 100, "place": 120,
          "publisher": 200, "pages": 60, "series_statement": 255, "volume": 30,
          "subjects": 1000, "class_number": 30, "author": 255}


def _clean(value, period=True):
    """ISBD punctuation off the end ('Title /' -> 'Title'), spaces collapsed, NFC."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    if text[-1:] in _TRAILING_CHARS:  # no spaces at the ends now: punctuation or nothing
        text = _TRAILING.sub("", text)
    if period and text.endswith(".") and not text.endswith(".."):
        words = text[:-1].split()
        last = words[-1] if words else ""
        initial = len(last) == 1 and last.isalpha() or (
            len(last) >= 3 and last[-2] == "." and last[-1].isalpha())  # "J." "C.E."
        if not initial and last.lower().rstrip(".") not in _ABBREVIATIONS:
            text = _TRAILING.sub("", text[:-1])
    text = unicodedata.normalize("NFC", text)
    return text or None


def _cut(text, name):
    if text is None:
        return None
    limit = LIMITS[name]
    return text if len(text) <= limit else text[:limit].rstrip()


_YEAR = re.compile(r"(?<!\d)(1[5-9]\d\d|20\d\d)(?!\d)")
_VND = re.compile(r"(vnd|vnđ|đ\b|đồng|dong)", re.I)
_PLAIN_AMOUNT = re.compile(r"^\d{1,3}([.,\s]\d{3})+$|^\d+$")


def parse_price(text, currency=None):
    """A price in VND, or None: '45.000đ', 'VND 45000', '45000' (no other currency)."""
    if not text:
        return None
    text = text.strip()
    if currency and currency.strip().upper() not in ("VND", "VNĐ"):
        return None
    marked = bool(_VND.search(text)) or bool(currency)
    amount = re.sub(r"(?i)(vnd|vnđ|đồng|dong|đ)", "", text).strip(" .:;,")
    amount = amount.strip()
    if not _PLAIN_AMOUNT.match(amount):
        return None
    if not marked and not amount.isdigit() and not re.match(r"^\d{1,3}(\.\d{3})+$", amount):
        return None
    digits = re.sub(r"\D", "", amount)
    if not digits or len(digits) > 14:
        return None
    return int(digits)


RELATOR_CODES = {"aut": AuthorRole.author, "edt": AuthorRole.editor, "trl": AuthorRole.translator,
                 "ill": AuthorRole.illustrator, "com": AuthorRole.compiler,
                 "cre": AuthorRole.author}
ROLE_CODES = {AuthorRole.editor: ("editor", "edt"), AuthorRole.translator: ("translator", "trl"),
              AuthorRole.illustrator: ("illustrator", "ill"),
              AuthorRole.compiler: ("compiler", "com")}
_RELATOR_TERMS = {
    "ed": AuthorRole.editor, "eds": AuthorRole.editor, "edited by": AuthorRole.editor,
    "trans": AuthorRole.translator, "tr": AuthorRole.translator,
    "translated by": AuthorRole.translator, "trad": AuthorRole.translator,
    "traducteur": AuthorRole.translator, "ill": AuthorRole.illustrator,
    "illus": AuthorRole.illustrator, "illustrated by": AuthorRole.illustrator,
    "comp": AuthorRole.compiler, "compiled by": AuthorRole.compiler,
    "author": AuthorRole.author, "auteur": AuthorRole.author,
}


def _role(subfields):
    for code, value in subfields:
        if code == "4" and value:
            role = RELATOR_CODES.get(value.strip().lower().strip("."))
            if role is not None:
                return role
    for code, value in subfields:
        if code == "e" and value:
            term = _clean(value).lower().strip(" .,") if _clean(value) else ""
            role = ROLE_WORDS.get(term) or _RELATOR_TERMS.get(term)
            if role is not None:
                return role
    return AuthorRole.author


def _name(tag, subfields):
    if tag in ("110", "710"):
        parts = [v for c, v in subfields if c in "ab" and v and v.strip()]
        name = ". ".join(_clean(p) for p in parts if _clean(p))
    else:
        parts = [v for c, v in subfields if c in "ab" and v and v.strip()]
        name = " ".join(_clean(p, period=False) for p in parts if _clean(p, period=False))
        name = _clean(name)
    return _cut(name, "author") if name else None


def _authors(f):
    out = []
    for tags, main in ((("100", "110"), True), (("700", "710"), False)):
        for tag in tags:
            for value in f.get(tag):
                if not isinstance(value, tuple):
                    continue
                name = _name(tag, value[2])
                if not name:
                    continue
                entry = (name, _role(value[2]), main and not any(a[2] for a in out))
                if any(a[0] == entry[0] and a[1] == entry[1] for a in out):
                    continue
                out.append(entry)
    return out


def _subjects(f):
    seen, out = set(), []
    for tag in ("650", "653"):
        for value in f.get(tag):
            if not isinstance(value, tuple):
                continue
            if tag == "650":
                parts = [_clean(v) for c, v in value[2] if c in "axyzv" and v and v.strip()]
                terms = [" -- ".join(p for p in parts if p)]
            else:
                terms = [_clean(v) for c, v in value[2] if c == "a" and v and v.strip()]
            for term in terms:
                if term and term.lower() not in seen:
                    seen.add(term.lower())
                    out.append(term)
    text = ""
    for term in out:
        candidate = f"{text}; {term}" if text else term
        if len(candidate) > LIMITS["subjects"]:
            break
        text = candidate
    return text or None


def _publication(f):
    """The 264 (publication, ind2 1) or 260 field the place, publisher and year come from."""
    chosen = None
    for value in f.get("264"):
        if isinstance(value, tuple) and value[1] == "1":
            chosen = ("264", value)
            break
    if chosen is None:
        for tag in ("264", "260"):
            for value in f.get(tag):
                if isinstance(value, tuple):
                    chosen = (tag, value)
                    break
            if chosen:
                break
    return chosen


def _class(f):
    for value in f.get("082"):
        if isinstance(value, tuple):
            for code, v in value[2]:
                if code == "a" and v and v.strip():
                    number = v.replace("/", "").replace("'", "").strip().split()[0]
                    return _cut(number, "class_number"), "DDC"
    for value in f.get("084"):
        if not isinstance(value, tuple):
            continue
        subs = dict((c, v) for c, v in reversed(value[2]))
        number, source = (subs.get("a") or "").strip(), (subs.get("2") or "").strip()
        if number and source:
            return _cut(number, "class_number"), source
    return None, None


DOCUMENT_TYPES_BY_LEADER = {"e": "BD", "f": "BD", "k": "TA", "g": "BDA", "i": "BDA",
                            "j": "BDA", "m": "HLDT"}


def _document_type(f):
    value = f.first("927", "a")
    if value:
        return value.strip()
    kind, level = f.leader[6:7], f.leader[7:8]
    if kind in ("a", "t") and level == "s":
        return "BC"
    return DOCUMENT_TYPES_BY_LEADER.get(kind)


def _language(f):
    for value in f.get("041"):
        if isinstance(value, tuple):
            for code, v in value[2]:
                if code == "a" and v:
                    text = v.strip().lower()[:3]
                    if len(text) == 3 and text.isalpha() and text.isascii():
                        return text
    fixed = f.control("008") or ""
    text = fixed[35:38].strip().lower()
    if len(text) == 3 and text.isalpha() and text.isascii():
        return text
    return "und"


def _year(f, publication):
    if publication:
        for code, value in publication[1][2]:
            if code == "c" and value:
                match = _YEAR.search(value)
                if match:
                    return int(match.group(1))
    fixed = f.control("008") or ""
    text = fixed[7:11]
    if text.isdigit() and 1450 <= int(text) <= 2100:
        return int(text)
    return None


def _isbn(f, warnings_):
    from app.catalog.services import normalise_isbn
    from app.core.errors import ValidationError

    found, price = None, None
    for value in f.get("020"):
        if not isinstance(value, tuple):
            continue
        for code, v in value[2]:
            if code == "a" and v and v.strip() and found is None:
                token = re.search(r"[0-9][0-9Xx\- ]{8,}[0-9Xx]", v)
                text = token.group(0) if token else v.strip()
                try:
                    found = normalise_isbn(text.replace(" ", ""))
                except ValidationError:
                    warnings_.append((N_("The ISBN “%(isbn)s” is not valid: the record is "
                                         "imported without it."), {"isbn": v.strip()}))
            elif code == "c" and v and price is None:
                price = parse_price(v)
    if price is None:
        for value in f.get("365"):
            if isinstance(value, tuple):
                subs = dict((c, v) for c, v in reversed(value[2]))
                price = parse_price(subs.get("b"), subs.get("c"))
                if price is not None:
                    break
    return found, price


def record_fields(record, warnings=None):
    """The columns of a Record (and its authors) from a bibliographic MARC record.

    `record`: a pymarc Record or its as_dict(). Invalid ISBNs are dropped and reported in
    `warnings` (a list of (msgid, params)). Raises `MarcError` if there is no title.
    """
    warnings_ = [] if warnings is None else warnings
    f = record if isinstance(record, _Fields) else _Fields(record)
    title_field = None
    for value in f.get("245"):
        if isinstance(value, tuple):
            title_field = value
            break
    subs = title_field[2] if title_field else []

    def sub(code, period=True):
        parts = [_clean(v, period) for c, v in subs if c == code and v and v.strip()]
        parts = [p for p in parts if p]
        return " ".join(parts) if parts else None

    title = sub("a")
    if not title:
        title = sub("k") or sub("p")
    if not title:
        raise MarcError(N_("The record has no title (245 $a): it is not imported."))
    publication = _publication(f)
    pub_subs = publication[1][2] if publication else []

    def pub(code):
        for c, v in pub_subs:
            if c == code and v and v.strip():
                return _clean(v, period=False)
        return None

    edition = None
    for value in f.get("250"):
        if isinstance(value, tuple):
            parts = [_clean(v, period=False) for c, v in value[2] if c in "ab" and v]
            edition = " ".join(p for p in parts if p) or None
            break
    pages, size = None, None
    for value in f.get("300"):
        if isinstance(value, tuple):
            for c, v in value[2]:
                if c == "a" and v and pages is None:
                    pages = _clean(v, period=False)
                elif c == "c" and v and size is None and "cm" in v:
                    number = re.search(r"\d+", v)
                    size = int(number.group(0)) if number and len(number.group(0)) < 5 else None
            break
    isbn, price = _isbn(f, warnings_)
    series = None
    for tag in ("490", "440"):
        for value in f.get(tag):
            if isinstance(value, tuple):
                a = " ".join(_clean(v) for c, v in value[2] if c == "a" and v and _clean(v))
                v_ = " ".join(_clean(v, False) for c, v in value[2]
                              if c == "v" and v and _clean(v, False))
                series = " ; ".join(p for p in (a, v_) if p) or None
                break
        if series:
            break
    summaries = []
    for value in f.get("520"):
        if isinstance(value, tuple):
            text = " ".join(" ".join(v.split()) for c, v in value[2] if c in "ab" and v)
            if text:
                summaries.append(unicodedata.normalize("NFC", text))
    class_number, scheme = _class(f)
    authors = _authors(f)
    return {
        "title": _cut(title, "title"),
        "subtitle": _cut(sub("b"), "subtitle"),
        "responsibility": _cut(sub("c"), "responsibility"),
        "volume": _cut(sub("n"), "volume"),
        "edition": _cut(edition, "edition"),
        "place": _cut(pub("a"), "place"),
        "publisher": _cut(pub("b"), "publisher"),
        "year": _year(f, publication),
        "pages": _cut(pages, "pages"),
        "size_cm": size,
        "isbn": isbn,
        "price": price,
        "language": _language(f),
        "series_statement": _cut(series, "series_statement"),
        "summary": "\n\n".join(summaries) or None,
        "subjects": _subjects(f),
        "class_number": class_number,
        "scheme": scheme,  # "DDC", or the 084 $2 source
        "document_type": _document_type(f),  # a DocumentType code, or None
        "authors": [(name, role) for name, role, _main in authors],
        "main_author": next((name for name, _r, main in authors if main), None),
    }


class MarcError(Exception):
    def __init__(self, message, **params):
        self.message, self.params = message, params
        super().__init__(message)


def bibliographic_problem(record):
    """The msgid explaining why a record is not a MARC 21 bibliographic record, or None."""
    f = record if isinstance(record, _Fields) else _Fields(record)
    kind = f.leader[6:7]
    if kind in NOT_BIBLIOGRAPHIC:
        return NOT_BIBLIOGRAPHIC[kind]
    if not f.get("245") and f.get("200"):
        return N_("This record is in UNIMARC (title in field 200), not MARC 21: it is not "
                  "imported.")
    return None


# --- Items (copies) in 852 / 949 / 952 -------------------------------------------------

_CODE_LIKE = re.compile(r"^[A-Za-z0-9_.\-]{1,20}$")


def item_fields(record):
    """The copies described by the item fields of a record: dicts with tag, barcode,
    call_number, label (accession label), locations (codes to try), price."""
    f = record if isinstance(record, _Fields) else _Fields(record)
    items = []
    for tag in ITEM_TAGS:
        for value in f.get(tag):
            if not isinstance(value, tuple):
                continue
            subs = {}
            for code, v in value[2]:
                if v is not None and v.strip():
                    subs.setdefault(code, []).append(v.strip())

            def one(*codes):
                for code in codes:
                    if subs.get(code):
                        return subs[code][0]
                return None

            if tag == "852":
                barcode, label = one("p"), one("t")
                call = " ".join(subs.get("h", []) + subs.get("i", [])) or one("j")
                locations = subs.get("b", []) + subs.get("c", [])
                price = None
                is_item = bool(barcode or label or call)
            elif tag == "949":
                barcode = one("i", "p")
                call = one("h", "a")
                label = None
                locations = subs.get("l", []) + subs.get("c", []) + subs.get("b", [])
                price = None
                is_item = bool(barcode or call)
            else:  # 952, Koha items
                barcode, call, label = one("p"), one("o"), one("i")
                locations = subs.get("c", []) + subs.get("a", []) + subs.get("b", [])
                price = parse_price(one("g")) or parse_price(one("v"))
                is_item = bool(barcode or call or label or one("c", "y", "t", "g")) or bool(
                    one("a") and _CODE_LIKE.match(one("a")))
            if is_item:
                items.append({"tag": tag, "barcode": barcode, "call_number": call,
                              "label": label, "locations": locations, "price": price})
    return items


def without_items(marc):
    """A record's as_dict() without its item fields (852/949/952): what is stored."""
    return {"leader": marc.get("leader"),
            "fields": [item for item in marc.get("fields", ())
                       if _ITEM_TAG_SET.isdisjoint(item)]}


# --- Building MARC for export ------------------------------------------------------------

def _df(tag, ind1, ind2, subfields):
    return {tag: {"ind1": ind1, "ind2": ind2,
                  "subfields": [{code: value} for code, value in subfields if value]}}


def _tag_of(item):
    return next(iter(item))


def _insert_sorted(fields, item, before_index=None):
    """Insert `item` at `before_index`, or before the first field with a greater tag."""
    if before_index is not None:
        fields.insert(before_index, item)
        return
    tag = _tag_of(item)
    for i, existing in enumerate(fields):
        if _tag_of(existing) > tag:
            fields.insert(i, item)
            return
    fields.append(item)


def _insert_all(fields, items, before_index=None):
    """Insert `items` (same tag) in their order, at `before_index` or in tag order."""
    if not items:
        return
    if before_index is None:
        tag = _tag_of(items[0])
        before_index = next((i for i, f in enumerate(fields) if _tag_of(f) > tag), len(fields))
    fields[before_index:before_index] = items


def _remove(fields, predicate):
    """Remove matching fields; returns the index of the first one removed (or None)."""
    first = None
    kept = []
    for i, item in enumerate(fields):
        if predicate(item):
            if first is None:
                first = len(kept)
        else:
            kept.append(item)
    fields[:] = kept
    return first


def _value(value):
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, str):
        value = " ".join(value.split())
        return unicodedata.normalize("NFC", value) or None
    return value


def _field_245(values, ind1="1", ind2="0"):
    parts = [["a", values.get("title") or ""]]
    if values.get("volume"):
        parts.append(["n", values["volume"]])
    if values.get("subtitle"):
        parts.append(["b", values["subtitle"]])
    if values.get("responsibility"):
        parts.append(["c", values["responsibility"]])
    marks = {"n": ".", "b": " :", "c": " /"}
    for i in range(len(parts) - 1):
        mark = marks[parts[i + 1][0]]
        if not (mark == "." and parts[i][1].endswith(".")):
            parts[i][1] += mark
    if values.get("responsibility") and not parts[-1][1].endswith("."):
        parts[-1][1] += "."
    return _df("245", ind1, ind2, parts)


def _field_264(values, tag="264", ind1=" ", ind2="1"):
    parts = [["a", values.get("place")], ["b", values.get("publisher")],
             ["c", str(values["year"]) if values.get("year") else None]]
    parts = [p for p in parts if p[1]]
    marks = {"b": " :", "c": ","}
    for i in range(len(parts) - 1):
        parts[i][1] += marks[parts[i + 1][0]]
    return _df(tag, ind1, ind2, parts) if parts else None


def _field_300(values, old=None):
    subs = [("a", values.get("pages"))]
    for code, value in (old or []):
        if code not in ("a", "c"):
            subs.append((code, value))
    subs.append(("c", f"{values['size_cm']} cm" if values.get("size_cm") else None))
    subs = [[c, v] for c, v in subs if v]
    for i in range(len(subs) - 1):
        nxt = subs[i + 1][0]
        mark = " ;" if nxt == "c" else " :" if nxt == "b" else " +" if nxt == "e" else ""
        if mark and not subs[i][1].endswith(mark.strip()):
            subs[i][1] += mark
    return _df("300", " ", " ", subs) if subs else None


def _price_text(price):
    return f"{int(price)} VND" if price is not None else None


def _author_fields(authors):
    out = []
    for i, (name, role, is_main) in enumerate(authors):
        main = is_main and not any(_tag_of(x) == "100" for x in out)
        tag = "100" if main else "700"
        subs = [("a", name)]
        if role in ROLE_CODES:
            term, code = ROLE_CODES[role]
            subs += [("e", term), ("4", code)]
        out.append(_df(tag, "1" if "," in name else "0", " ", subs))
    return out


def _scheme_field(class_number, scheme):
    if not class_number:
        return None
    if not scheme or scheme.upper() == "DDC":
        return _df("082", "0", "4", [("a", class_number)])
    return _df("084", " ", " ", [("a", class_number), ("2", scheme)])


@functools.lru_cache(maxsize=8)
def _stamps(now):
    """005 and the date part of 008 for a moment (the same for every record of an export)."""
    return now.strftime("%Y%m%d%H%M%S.0"), now.strftime("%y%m%d")


def _fixed_008(values, today):
    year = values.get("year")
    lang = (values.get("language") or "und")[:3].ljust(3)
    place = "vm " if lang == "vie" else "xx "
    dates = f"s{year:04d}    " if year else "nuuuu    "
    books = " " * 10 + " 000 0 "  # 008/18-34 for books: nothing coded, no index
    return f"{today}{dates}{place}{books}{lang} d"


def _leader_for(document_type):
    kind, level = "a", "m"
    for leader_kind, code in DOCUMENT_TYPES_BY_LEADER.items():
        if code == document_type:
            kind = leader_kind
            break
    if document_type == "BC":
        level = "s"
    return f"00000n{kind}{level} a2200000 i 4500"


def build_marc(values, record_id=None, now=None):
    """A complete MARC 21 record (as_dict form) for a record catalogued in the application.

    `values`: the same keys as `record_fields` returns, plus `authors` as
    (name, role, is_main) and `document_type` code.
    """
    stamp, today = _stamps(now or datetime.datetime.now().replace(microsecond=0))
    fields = []
    if record_id is not None:
        fields.append({"001": str(record_id)})
    fields.append({"005": stamp})
    fields.append({"008": _fixed_008(values, today)})
    if values.get("isbn") or values.get("price") is not None:
        fields.append(_df("020", " ", " ", [("a", values.get("isbn")),
                                            ("c", _price_text(values.get("price")))]))
    if values.get("language") and values["language"] != "und":
        fields.append(_df("041", "0", " ", [("a", values["language"])]))
    scheme = _scheme_field(values.get("class_number"), values.get("scheme"))
    if scheme:
        fields.append(scheme)
    authors = _author_fields(values.get("authors") or [])
    fields += [a for a in authors if _tag_of(a) == "100"]
    has_main = any(_tag_of(a) == "100" for a in authors)
    fields.append(_field_245(values, "1" if has_main else "0", "0"))
    if values.get("edition"):
        fields.append(_df("250", " ", " ", [("a", values["edition"])]))
    publication = _field_264(values)
    if publication:
        fields.append(publication)
    physical = _field_300(values)
    if physical:
        fields.append(physical)
    if values.get("series_statement"):
        fields.append(_df("490", "0", " ", [("a", values["series_statement"])]))
    if values.get("summary"):
        fields.append(_df("520", " ", " ", [("a", values["summary"])]))
    for term in _split_subjects(values.get("subjects")):
        fields.append(_df("653", " ", " ", [("a", term)]))
    fields += [a for a in authors if _tag_of(a) == "700"]
    if values.get("document_type"):
        fields.append(_df("927", " ", " ", [("a", values["document_type"])]))
    return {"leader": _leader_for(values.get("document_type")), "fields": fields}


def _split_subjects(text):
    return [t.strip() for t in (text or "").split(";") if t.strip()]


def _same(a, b):
    return _value(a) == _value(b)


def _authors_of(values):
    return [(_value(name), role) for name, role, *_rest in (values.get("authors") or [])]


_COMPARED = ("title", "subtitle", "responsibility", "volume", "edition", "place", "publisher",
             "year", "pages", "size_cm", "isbn", "price", "language", "series_statement",
             "summary", "subjects", "class_number")


def _untouched(mapped, values):
    """Whether the record's values are still what its stored MARC maps to."""
    for name in _COMPARED:
        a, b = mapped.get(name), values.get(name)
        if a != b and _value(a) != _value(b):
            return False
    if values.get("class_number") and values.get("scheme") is not None and \
            values["scheme"].upper() != (mapped.get("scheme") or "DDC").upper():
        return False
    if values.get("document_type") and values["document_type"] != mapped.get("document_type"):
        return False
    authors = values.get("authors") or []
    if len(authors) != len(mapped["authors"]):
        return False
    return all((a[0] == b[0] or _value(a[0]) == _value(b[0])) and a[1] == b[1]
               for a, b in zip(authors, mapped["authors"]))


# Key of the stored MARC holding the fingerprint of the record's values at import.
DIGEST_KEY = "values_digest"


def values_digest(values):
    """A fingerprint of a record's values in the form `to_marc_dict` takes them."""
    parts = [values.get(name) for name in _COMPARED]
    parts = [int(v) if isinstance(v, Decimal) else v for v in parts]
    parts += [values.get("scheme"), values.get("document_type"),
              [(name, getattr(role, "name", role), bool(main))
               for name, role, main in values.get("authors") or ()]]
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).hexdigest()


def stored_marc(marc, mapped, values):
    """The MARC to keep for an imported record (`marc`: as_dict without items; `mapped`: what
    record_fields maps it to; `values`: the record's values as created). When the record
    takes the values its MARC maps to (the usual case), the fingerprint of those values is
    kept with it: exports of the record then see at once that it is unchanged, without
    mapping its MARC again (update_marc)."""
    if not _untouched(mapped, values):
        return marc
    return dict(marc, **{DIGEST_KEY: values_digest(values)})


def update_marc(stored, values, now=None):
    """The stored original (as_dict, without items) with the fields the school edited in the
    application rewritten; untouched fields stay exactly as imported. Returns a new dict."""
    leader = stored.get("leader") or " " * 24
    digest = stored.get(DIGEST_KEY)
    if digest is not None and digest == values_digest(values):
        # The values are still those of the import, which were what the MARC maps to.
        return {"leader": leader, "fields": list(stored.get("fields", ()))}
    mapped = record_fields(stored)
    if _untouched(mapped, values):  # the usual case: nothing to rewrite
        return {"leader": leader, "fields": list(stored.get("fields", ()))}
    fields = [dict(item) for item in stored.get("fields", ())]
    changed = False

    def differs(*names):
        return any(not _same(mapped.get(n), values.get(n)) for n in names)

    if differs("title", "subtitle", "responsibility", "volume"):
        old = next((x["245"] for x in fields if "245" in x), None)
        at = _remove(fields, lambda x: "245" in x)
        _insert_sorted(fields, _field_245(values, (old or {}).get("ind1", "1"),
                                          (old or {}).get("ind2", "0")), at)
        changed = True
    if differs("edition"):
        at = _remove(fields, lambda x: "250" in x)
        if values.get("edition"):
            _insert_sorted(fields, _df("250", " ", " ", [("a", values["edition"])]), at)
        changed = True
    if differs("place", "publisher", "year"):
        source = _publication(_Fields(stored))
        tag, ind1, ind2 = ("264", " ", "1")
        at = None
        if source:
            tag, ind1, ind2 = source[0], source[1][0], source[1][1]
            target = source[1]
            for i, x in enumerate(fields):
                value = x.get(tag)
                if isinstance(value, dict) and (value.get("ind1"), value.get("ind2"), [
                        next(iter(s.items())) for s in value.get("subfields", ())]) == target:
                    at = i
                    break
            if at is not None:
                del fields[at]
        new = _field_264(values, tag, ind1, ind2)
        if new:
            _insert_sorted(fields, new, at)
        changed = True
    if differs("pages", "size_cm"):
        old = next((x["300"] for x in fields if "300" in x), None)
        at = None
        for i, x in enumerate(fields):
            if "300" in x:
                at = i
                del fields[i]
                break
        old_subs = [next(iter(s.items())) for s in (old or {}).get("subfields", ())]
        new = _field_300(values, old_subs)
        if new:
            _insert_sorted(fields, new, at)
        changed = True
    if differs("isbn", "price"):
        at = _remove(fields, lambda x: "020" in x or "365" in x)
        if values.get("isbn") or values.get("price") is not None:
            _insert_sorted(fields, _df("020", " ", " ", [
                ("a", values.get("isbn")), ("c", _price_text(values.get("price")))]), at)
        changed = True
    if differs("language"):
        at = _remove(fields, lambda x: "041" in x)
        lang = values.get("language") or "und"
        if lang != "und":
            _insert_sorted(fields, _df("041", "0", " ", [("a", lang)]), at)
        for x in fields:
            if isinstance(x.get("008"), str) and len(x["008"]) >= 38:
                x["008"] = x["008"][:35] + lang[:3].ljust(3) + x["008"][38:]
        changed = True
    if differs("series_statement"):
        at = _remove(fields, lambda x: "490" in x or "440" in x)
        if values.get("series_statement"):
            _insert_sorted(fields, _df("490", "0", " ", [("a", values["series_statement"])]),
                           at)
        changed = True
    if differs("summary"):
        at = _remove(fields, lambda x: "520" in x)
        if values.get("summary"):
            _insert_sorted(fields, _df("520", " ", " ", [("a", values["summary"])]), at)
        changed = True
    if differs("subjects"):
        at = _remove(fields, lambda x: "650" in x or "653" in x)
        _insert_all(fields, [_df("653", " ", " ", [("a", term)])
                             for term in _split_subjects(values.get("subjects"))], at)
        changed = True
    if (values.get("class_number") or mapped.get("class_number")) and (
            differs("class_number") or values.get("scheme") is not None and
            values["scheme"].upper() != (mapped.get("scheme") or "DDC").upper()):
        at = _remove(fields, lambda x: "082" in x or "084" in x)
        new = _scheme_field(values.get("class_number"), values.get("scheme"))
        if new:
            _insert_sorted(fields, new, at)
        changed = True
    if _authors_of(values) != [(_value(n), r) for n, r in mapped["authors"]]:
        author_tags = ("100", "110", "700", "710")
        _remove(fields, lambda x: _tag_of(x) in author_tags)
        new = _author_fields(values.get("authors") or [])
        _insert_all(fields, [a for a in new if _tag_of(a) == "100"])
        _insert_all(fields, [a for a in new if _tag_of(a) == "700"])
        changed = True
    # A document type the import did not recognise is not stored: no type keeps the MARC.
    if values.get("document_type") and values["document_type"] != mapped.get("document_type"):
        at = _remove(fields, lambda x: "927" in x)
        _insert_sorted(fields, _df("927", " ", " ", [("a", values["document_type"])]), at)
        changed = True
    if changed:
        now = now or datetime.datetime.now()
        stamp = now.strftime("%Y%m%d%H%M%S.0")
        at = _remove(fields, lambda x: "005" in x)
        _insert_sorted(fields, {"005": stamp}, at)
    return {"leader": leader, "fields": fields}


def copy_field(school_code, copy):
    """852 of one copy: $a school, $b location code, $h call number, $p barcode,
    $t accession label."""
    return _df("852", " ", " ", [("a", school_code), ("b", copy.get("location")),
                                 ("h", copy.get("call_number")), ("p", copy.get("barcode")),
                                 ("t", copy.get("label"))])


def to_marc_dict(values, copies=(), school_code=None, stored=None, record_id=None, now=None):
    """The MARC (as_dict form) to export for one record.

    `values`: the record's columns as record_fields returns them, with `authors` as
    (name, role, is_main) and `scheme` / `document_type` as codes; `copies`: dicts with
    barcode, label, location (code), call_number; `stored`: the stored original MARC.
    """
    if stored and stored.get("fields"):
        data = update_marc(stored, values, now)
    else:
        data = build_marc(values, record_id, now)
    fields = data["fields"]
    if copies:
        at = None
        for i, item in enumerate(fields):
            if next(iter(item)) > "852":
                at = i
                break
        new = [copy_field(school_code, c) for c in copies]
        if at is None:
            fields.extend(new)
        else:
            fields[at:at] = new
    return data


def scheme_code(scheme):
    """How MARC names a classification scheme: DDC (082), else the 084 $2 source."""
    if scheme is None:
        return None
    return "DDC" if scheme.code == "DDC" else (scheme.marc_source or scheme.code)


def record_values(record):
    """The export values of an ORM Record (see `to_marc_dict`)."""
    values = {name: getattr(record, name) for name in (
        "title", "subtitle", "responsibility", "volume", "edition", "place", "publisher",
        "year", "pages", "size_cm", "isbn", "price", "language", "series_statement",
        "summary", "subjects", "class_number")}
    values["scheme"] = scheme_code(record.scheme)
    values["document_type"] = record.document_type.code if record.document_type else None
    values["authors"] = [(a.name, a.role, a.is_main) for a in record.authors]
    return values


def to_marc(record, copies=()):
    """pymarc Record of an ORM Record and its copies (ORM Copy objects), for export."""
    items = [{"barcode": c.barcode, "label": c.accession_label,
              "location": c.location.code if c.location else None,
              "call_number": record.call_number} for c in copies]
    data = to_marc_dict(record_values(record), items,
                        record.school.code if record.school else None, record.marc,
                        record.id)
    return dict_to_record(data)


def dict_to_record(data):
    record = pymarc.Record(leader=data.get("leader") or " " * 24)
    record.leader = pymarc.Leader((data.get("leader") or " " * 24)[:24].ljust(24))
    for item in data.get("fields", ()):
        for tag, value in item.items():
            if isinstance(value, str):
                record.add_field(Field(tag=tag, data=value))
            else:
                record.add_field(Field(
                    tag=tag, indicators=Indicators(value.get("ind1", " ") or " ",
                                                   value.get("ind2", " ") or " "),
                    subfields=[Subfield(*next(iter(s.items())))
                               for s in value.get("subfields", ())]))
    return record


# --- Writing ---------------------------------------------------------------------------------

def _as_dict(record):
    return record if isinstance(record, dict) else record.as_dict()


def iso2709_bytes(data, problems=None):
    """One record (as_dict form) in ISO 2709, UTF-8 (leader/09 'a'). A field longer than
    the format allows (9,999 bytes) is cut; a record longer than 99,999 bytes raises
    ValueError."""
    directory = []
    parts = [None, None]  # leader and directory, then the fields
    offset = 0
    for item in data.get("fields", ()):
        for tag, value in item.items():
            if isinstance(value, str):
                raw = f"{value}\x1e".encode()
            else:
                subfields = "".join([f"\x1f{code}{text or ''}"
                                     for sub in value.get("subfields", ())
                                     for code, text in sub.items()])
                raw = (f"{(value.get('ind1') or ' ')[:1]}{(value.get('ind2') or ' ')[:1]}"
                       f"{subfields}\x1e").encode()
            size = len(raw)
            if size > 9999:
                raw = raw[:9998].decode("utf-8", "ignore").encode("utf-8") + FIELD_TERMINATOR
                size = len(raw)
                if problems is not None:
                    problems.append((tag, "field too long"))
            if len(tag) != 3 or not tag.isascii():
                tag = (tag.encode("ascii", "replace").decode("ascii") + "000")[:3]
            directory.append(f"{tag}{size:04d}{offset:05d}")
            parts.append(raw)
            offset += size
    directory.append("\x1e")
    parts[1] = "".join(directory).encode("ascii")
    base = 24 + len(parts[1])
    length = base + offset + 1
    if length > 99999:
        raise ValueError("record too long for ISO 2709")
    leader = data.get("leader") or " " * 24
    if len(leader) != 24 or not (leader.isascii() and leader.isprintable()):
        leader = "".join(c if c.isascii() and c.isprintable() else " "
                         for c in leader[:24].ljust(24))
    parts[0] = f"{length:05d}{leader[5:9]}a22{base:05d}{leader[17:20]}4500".encode("ascii")
    parts.append(RECORD_TERMINATOR)
    return b"".join(parts)


def write_iso2709(records, problems=None):
    """ISO 2709 (UTF-8) of records (pymarc Records or as_dict forms); a record too long for
    the format is left out and reported in `problems` (position, reason)."""
    out = []
    for i, record in enumerate(records, 1):
        try:
            out.append(iso2709_bytes(_as_dict(record)))
        except ValueError:
            if problems is not None:
                problems.append((i, "too long"))
    return b"".join(out)


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_LEADER = re.compile(r"[\d ]{5}[\dA-Za-z ][\dA-Za-z][\dA-Za-z ]{3}(2| )(2| )[\d ]{5}"
                         r"[\dA-Za-z ]{3}(4500|    )")
_XML_TAG = re.compile(r"(0([1-9A-Z][0-9A-Z])|0([1-9a-z][0-9a-z]))|(([1-9A-Z][0-9A-Z]{2})|"
                      r"([1-9a-z][0-9a-z]{2}))")
_XML_CONTROL_TAG = re.compile(r"00[1-9A-Za-z]")
_XML_INDICATORS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz ")
_XML_CODES = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "!\"#$%&'()*+,-./:;<=>?{}_^`~[]\\")
_XML_CODE_ATTRS = {c: _xml_escape(c, {'"': "&quot;"}) for c in _XML_CODES}
_XML_TAGS = {}  # tag -> how the schema takes it: "control", "data" or None (left out)


def _xml_tag_kind(tag):
    kind = _XML_TAGS.get(tag, False)
    if kind is False:
        kind = ("control" if _XML_CONTROL_TAG.fullmatch(tag) else
                "data" if _XML_TAG.fullmatch(tag) and not tag.startswith("00") else None)
        _XML_TAGS[tag] = kind
    return kind


def _xml_text(value):
    if not value:
        return ""
    if not value.isprintable():  # control characters are not allowed in XML 1.0
        value = _XML_INVALID.sub("", value)
    if "&" in value or "<" in value or ">" in value:
        return _xml_escape(value)
    return value


def _xml_leader(leader):
    leader = (leader or " " * 24)[:24].ljust(24)
    if _XML_LEADER.fullmatch(leader):
        return leader
    chars = list(leader)
    for i in range(24):
        ok = (chars[i].isascii() and (chars[i].isalnum() or chars[i] == " "))
        if i < 5 or 12 <= i < 17:
            ok = chars[i].isdigit() or chars[i] == " "
        if not ok:
            chars[i] = " "
    if chars[6] == " ":
        chars[6] = "a"
    chars[10:12] = "22"
    if "".join(chars[20:24]) not in ("4500", "    "):
        chars[20:24] = "4500"
    return "".join(chars)


def marcxml_record(data):
    """One <record> element (MARC21 slim, valid against MARC21slim.xsd: control fields
    first, as the schema's sequence requires; characters XML cannot carry are dropped)."""
    parts = ["<record>", f"<leader>{_xml_text(_xml_leader(data.get('leader')))}</leader>"]
    datafields = []
    kinds, codes, xml_text = _XML_TAGS, _XML_CODE_ATTRS, _xml_text
    for item in data.get("fields", ()):
        for tag, value in item.items():
            kind = kinds[tag] if tag in kinds else _xml_tag_kind(tag)
            if isinstance(value, str):
                if kind == "control":
                    parts.append(f'<controlfield tag="{tag}">{xml_text(value)}</controlfield>')
                continue
            if kind != "data":
                continue
            subs = []
            for sub in value.get("subfields", ()):
                for code, text in sub.items():
                    if code in codes:
                        # Most text needs nothing: tested here (a call per subfield costs more).
                        if not (text and text.isprintable() and "&" not in text
                                and "<" not in text and ">" not in text):
                            text = xml_text(text)
                        subs.append(f'<subfield code="{codes[code]}">{text}</subfield>')
            if not subs:
                continue
            ind1 = value.get("ind1") or " "
            ind2 = value.get("ind2") or " "
            ind1 = ind1 if ind1 in _XML_INDICATORS else " "
            ind2 = ind2 if ind2 in _XML_INDICATORS else " "
            datafields.append(f'<datafield tag="{tag}" ind1="{ind1}" ind2="{ind2}">'
                              f'{"".join(subs)}</datafield>')
    parts += datafields
    parts.append("</record>")
    return "".join(parts)


XML_HEADER = ('<?xml version="1.0" encoding="UTF-8"?>\n'
              f'<collection xmlns="{MARCXML_NS}" '
              'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
              f'xsi:schemaLocation="{MARCXML_SCHEMA}">\n')
XML_FOOTER = "</collection>\n"


def write_marcxml(records):
    """MARCXML collection (UTF-8) of records (pymarc Records or as_dict forms)."""
    body = "\n".join(marcxml_record(_as_dict(r)) for r in records)
    return (XML_HEADER + body + ("\n" if body else "") + XML_FOOTER).encode("utf-8")
