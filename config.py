"""Configuration, read from environment variables.

Names deployments and checks rely on:
  DATABASE_URL      SQLAlchemy URL; default: SQLite file in the instance folder.
                    Production: postgresql+psycopg://user:pass@host:5432/dbname
  SECRET_KEY        when unset, generated once and kept in instance/secret_key
  PORT              web port of `python run.py` (default 5000)
  APP_ENV           "development" (default) or "production" (secure cookies, no demo data)
  DEFAULT_LOCALE    "vi" (default) or "en"
  SESSION_COOKIE_SECURE  "1"/"0"; defaults to on in production
  RATELIMIT_STORAGE_URI  shared storage for the login rate limit with several workers
                         (e.g. redis://127.0.0.1:6379); default in-process memory
  LOGIN_RATE_LIMIT  default "5 per minute"
  DB_PING_AFTER_IDLE_S  a pooled connection idle longer is pinged before use (default 10)
"""
import os
import secrets

BASE_DIR = os.path.abspath(os.path.dirname(__file__))
INSTANCE_DIR = os.environ.get("INSTANCE_PATH", os.path.join(BASE_DIR, "instance"))


def _flag(name, default):
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _secret_key():
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    # Never a constant in code: generate once per installation and keep it.
    os.makedirs(INSTANCE_DIR, exist_ok=True)
    path = os.path.join(INSTANCE_DIR, "secret_key")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    with open(path) as fh:
        return fh.read().strip()


def _database_url():
    url = os.environ.get("DATABASE_URL")
    if url:
        if url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url[len("postgres://"):]
        elif url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        return url
    os.makedirs(INSTANCE_DIR, exist_ok=True)
    return "sqlite:///" + os.path.join(INSTANCE_DIR, "thuvien.db")


APP_ENV = os.environ.get("APP_ENV", "development")
IS_PRODUCTION = APP_ENV == "production"

SECRET_KEY = _secret_key()
SQLALCHEMY_DATABASE_URI = _database_url()
SQLALCHEMY_TRACK_MODIFICATIONS = False
# No `SELECT 1` before every request: a connection is pinged only after this many idle seconds
# in the pool (app.core.pool).
SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": False}
SQLALCHEMY_PING_AFTER_IDLE_S = float(os.environ.get("DB_PING_AFTER_IDLE_S", "10"))
PORT = int(os.environ.get("PORT", "5000"))

APP_NAME = "Thư viện trường học"
APP_ICON = "/static/app/logo.svg"
APP_THEME = ""

# Flask-AppBuilder must not create tables or permissions behind Alembic's back:
# app.core.setup does both explicitly after `upgrade`.
FAB_CREATE_DB = False
FAB_UPDATE_PERMS = False
FAB_SECURITY_MANAGER_CLASS = "app.core.security.AppSecurityManager"
FAB_INDEX_VIEW = "app.reports.dashboard.HomeView"
FAB_ADD_SECURITY_API = False
FAB_API_SWAGGER_UI = False
AUTH_TYPE = 1  # AUTH_DB
AUTH_ROLE_ADMIN = "dept_admin"
AUTH_ROLE_PUBLIC = "public"
AUTH_USER_REGISTRATION = False

# Password policy (app.core.security.password_policy) on every password form.
FAB_PASSWORD_COMPLEXITY_ENABLED = True
# FAB_PASSWORD_COMPLEXITY_VALIDATOR is set to app.core.security.password_policy in create_app.

# Login attempts rate-limited (Flask-Limiter, through Flask-AppBuilder).
AUTH_RATE_LIMITED = _flag("AUTH_RATE_LIMITED", True)
AUTH_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "5 per minute")
RATELIMIT_ENABLED = AUTH_RATE_LIMITED
RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")

# CSRF on every form (Flask-WTF CSRFProtect is registered in create_app).
WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = None

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _flag("SESSION_COOKIE_SECURE", IS_PRODUCTION)
REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
REMEMBER_COOKIE_HTTPONLY = True

# Languages: Vietnamese by default, English selectable.
BABEL_DEFAULT_LOCALE = os.environ.get("DEFAULT_LOCALE", "vi")
BABEL_DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"
BABEL_TRANSLATION_DIRECTORIES = os.path.join(BASE_DIR, "translations")
LANGUAGES = {
    "vi": {"flag": "vn", "name": "Tiếng Việt"},
    "en": {"flag": "gb", "name": "English"},
}

# Roles and permissions are synchronised from code when a worker starts; a deployment may turn
# this off and run `flask --app run sync-roles` once instead (saves ~1 s per worker start).
SYNC_ROLES_ON_START = _flag("SYNC_ROLES_ON_START", True)

# Demo accounts exist only when demo data is loaded, never in production.
DEMO_DATA_ON_EMPTY_DB = _flag("DEMO_DATA", not IS_PRODUCTION)

FAB_API_MAX_PAGE_SIZE = 100
# Permissions come from code (app.core.security): no editing screens for them.
FAB_ADD_SECURITY_PERMISSION_VIEW = False
FAB_ADD_SECURITY_VIEW_MENU_VIEW = False
FAB_ADD_SECURITY_PERMISSION_VIEWS_VIEW = False
