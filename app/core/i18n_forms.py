"""WTForms messages through our catalogue (WTForms ships no Vietnamese)."""
import flask_wtf.form
from flask_babel import get_translations


class _BabelFormTranslations:
    # WTForms formats the messages itself: hand back the raw translated strings.
    def gettext(self, string):
        return get_translations().ugettext(string)

    def ngettext(self, singular, plural, n):
        return get_translations().ungettext(singular, plural, n)


def install_form_translations():
    # Flask-WTF loads WTForms' own catalogue, which has no "vi": use ours instead.
    flask_wtf.form.translations = _BabelFormTranslations()
