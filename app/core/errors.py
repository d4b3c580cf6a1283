"""Typed domain errors. Services raise them; views turn them into Vietnamese messages."""
from flask_babel import lazy_gettext as _l


class DomainError(Exception):
    """An error the user can act on; `message` is translated (lazy)."""

    message = _l("The operation could not be completed.")
    status = 400

    def __init__(self, message=None, **params):
        self.params = params
        if message is not None:
            self.message = message
        super().__init__(str(self))

    def __str__(self):
        text = str(self.message)
        return text % self.params if self.params else text


class TenancyError(DomainError):
    message = _l("This record belongs to another school: you cannot change it.")
    status = 403


class ValidationError(DomainError):
    """Bad input: names the field (and the row, in imports) and the problem."""

    def __init__(self, message, field=None, row=None, **params):
        self.field = field
        self.row = row
        super().__init__(message, **params)
