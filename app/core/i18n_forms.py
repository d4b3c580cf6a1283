"""WTForms messages through our catalogue (WTForms ships no Vietnamese)."""
import flask_wtf.form
from flask_babel import gettext, ngettext


class _BabelFormTranslations:
    def gettext(self, string):
        return gettext(string)

    def ngettext(self, singular, plural, n):
        return ngettext(singular, plural, n)


def install_form_translations():
    # Flask-WTF loads WTForms' own catalogue, which has no "vi": use ours instead.
    flask_wtf.form.translations = _BabelFormTranslations()
