"""Enums that carry a translatable label (shown on screens) and a stable code (stored)."""
import enum

from flask_babel import lazy_gettext


def N_(text):
    """Marks a msgid for extraction without translating it now (babel keyword N_)."""
    return text


class LabeledEnum(enum.Enum):
    """Stored by member name; `label` is the translated text for screens and exports.

    Subclasses declare members as ``code = N_("English label")``.
    """

    @property
    def label(self):
        return lazy_gettext(self.value)

    def __str__(self):
        return str(self.label)

    @classmethod
    def choices(cls):
        return [(m.name, m.label) for m in cls]
