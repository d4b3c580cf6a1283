"""Signed values checked once per worker: the session cookie and the CSRF token.

Every request of a logged-in user brings the same signed session cookie, and every POST of
the desk the same signed CSRF token, until they change. Checking a signature (HMAC) and
decoding the cookie (base64, zlib, JSON) cost more than the desk's own work on the way. A
signature is a pure function of the signed bytes and the secret key, so each worker keeps what
it has already verified, keyed by the exact bytes: a value verified once is valid again, and
only the age of its timestamp is checked again at each use (`max_age`, as itsdangerous does).
A value that fails is never kept; a changed secret key (or its fallbacks) starts a new table.

- `VerifiedSessionInterface`: Flask's signed cookie session (SecureCookieSessionInterface),
  each request getting its own copy of the decoded session.
- `VerifiedCSRFProtect`: Flask-WTF's CSRFProtect, the same checks (token in the form or the
  headers, the session's token, the signature, the time limit, the referrer on HTTPS).
"""
import copy
import hmac
import logging
import time

from flask import current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect, same_origin
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from wtforms import ValidationError

logger = logging.getLogger("flask_wtf.csrf")
MAX_ENTRIES = 10000
stats = {"verified": 0, "reused": 0}  # for the tests


class VerifyingSerializer(URLSafeTimedSerializer):
    """URLSafeTimedSerializer whose `loads` remembers the values it has verified."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._verified = {}  # (signed value, salt) -> (value, timestamp)

    def loads(self, s, max_age=None, return_timestamp=False, salt=None):
        key = (s, salt)
        entry = self._verified.get(key)
        if entry is not None:
            value, timestamp = entry
            age = int(time.time()) - timestamp  # as itsdangerous.TimestampSigner.unsign
            if max_age is None or 0 <= age <= max_age:
                stats["reused"] += 1
                value = _own_copy(value)  # each caller its own (a session is changed)
                return (value, _datetime(timestamp)) if return_timestamp else value
            # Too old: let itsdangerous say so.
        value, stamp = super().loads(s, max_age=max_age, return_timestamp=True, salt=salt)
        stats["verified"] += 1
        if len(self._verified) >= MAX_ENTRIES:
            self._verified.clear()
        self._verified[key] = (_own_copy(value), int(stamp.timestamp()))
        return (value, stamp) if return_timestamp else value


_SCALARS = frozenset((str, int, float, bool, type(None)))


def _own_copy(value):
    """A copy the caller may change. A logged-in user's session is a flat dict of strings and
    flags, and a CSRF token a string: copied shallowly (or not at all), which is exact for
    them and cheaper than deepcopy; anything else deeply."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict and all(type(v) in _SCALARS for v in value.values()):
        return dict(value)
    return copy.deepcopy(value)


def _datetime(timestamp):
    import datetime

    return datetime.datetime.fromtimestamp(int(timestamp), tz=datetime.timezone.utc)


class VerifiedSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie session with one verifying serializer per secret key (Flask builds one
    per request)."""

    _serializers = {}

    def get_signing_serializer(self, app):
        if not app.secret_key:
            return None
        keys = list(app.config.get("SECRET_KEY_FALLBACKS") or []) + [app.secret_key]
        ident = (tuple(keys), self.salt, self.digest_method, self.key_derivation)
        serializer = self._serializers.get(ident)
        if serializer is None:
            serializer = self._serializers[ident] = VerifyingSerializer(
                keys, salt=self.salt, serializer=self.serializer,
                signer_kwargs={"key_derivation": self.key_derivation,
                               "digest_method": self.digest_method})
        return serializer


class VerifiedCSRFProtect(CSRFProtect):
    """CSRFProtect whose token check (flask_wtf.csrf.validate_csrf) reuses verified tokens."""

    _serializers = {}

    def protect(self, apply_exemptions=False):
        if apply_exemptions:
            if not request.endpoint or self._is_exempt():
                return
        if request.method not in current_app.config["WTF_CSRF_METHODS"]:
            return
        try:
            self._validate(self._token())
        except ValidationError as e:
            logger.info(e.args[0])
            self._error_response(e.args[0])
        if request.is_secure and current_app.config["WTF_CSRF_SSL_STRICT"]:
            if not request.referrer:
                self._error_response("The referrer header is missing.")
            good_referrer = f"https://{request.host}/"
            if not same_origin(request.referrer, good_referrer):
                self._error_response("The referrer does not match the host.")
        g.csrf_valid = True  # mark this request as CSRF valid

    def _token(self):
        """_get_csrf_token: the form's field first, then the headers. A body that is not a
        form (the desk's JSON) has no form field: straight to the headers."""
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return self._get_csrf_token()
        for header_name in current_app.config["WTF_CSRF_HEADERS"]:
            token = request.headers.get(header_name)
            if token:
                return token
        return None

    def _validate(self, data):
        """flask_wtf.csrf.validate_csrf with the defaults of the configuration."""
        config = current_app.config
        secret_key = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
        if not secret_key:
            raise ValidationError("A secret key is required to use CSRF.")
        field_name = config.get("WTF_CSRF_FIELD_NAME") or "csrf_token"
        time_limit = config.get("WTF_CSRF_TIME_LIMIT", 3600)
        if not data:
            raise ValidationError("The CSRF token is missing.")
        if field_name not in session:
            raise ValidationError("The CSRF session token is missing.")
        serializer = self._serializers.get(secret_key)
        if serializer is None:
            serializer = self._serializers[secret_key] = VerifyingSerializer(
                secret_key, salt="wtf-csrf-token")
        try:
            token = serializer.loads(data, max_age=time_limit)
        except SignatureExpired as e:
            raise ValidationError("The CSRF token has expired.") from e
        except BadData as e:
            raise ValidationError("The CSRF token is invalid.") from e
        if not hmac.compare_digest(session[field_name], token):
            raise ValidationError("The CSRF tokens do not match.")
