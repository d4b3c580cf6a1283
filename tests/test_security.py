"""Security basics: CSRF, rate-limited logins, cookies, secret key, no demo accounts in production."""
import os
import subprocess
import sys

from sqlalchemy import func, select

from app.collection.models import Location
from app.extensions import db
from tests.helpers import csrf_token, login, text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_forms_without_csrf_token_are_refused(app, login):
    c = login("thuvien")
    with app.app_context():
        before = db.session.execute(select(func.count()).select_from(Location)).scalar()
    resp = c.post("/locationview/add", data={"code": "NOCSRF", "name": "x",
                                             "kind": "open_stack"})
    assert resp.status_code == 400
    assert "Biểu mẫu đã hết hạn hoặc không hợp lệ" in text(resp)
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Location)).scalar() == before


def test_login_without_csrf_token_is_refused(client):
    resp = client.post("/login/", data={"username": "thuvien", "password": "thuvien2025"})
    assert resp.status_code == 400
    assert client.get("/").status_code == 302


def test_login_attempts_are_rate_limited(app):
    """A second app on the same database, with the production rate limit on."""
    from app import create_app

    limited = create_app({
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "TESTING": True, "AUTH_RATE_LIMITED": True, "RATELIMIT_ENABLED": True,
        "AUTH_RATE_LIMIT": "3 per minute", "RATELIMIT_STORAGE_URI": "memory://",
        "SYNC_ROLES_ON_START": False,
    })
    c = limited.test_client()
    codes = []
    for _ in range(5):
        token = csrf_token(c, "/login/")
        resp = c.post("/login/", data={"username": "thuvien", "password": "wrong-password",
                                       "csrf_token": token})
        codes.append(resp.status_code)
    assert codes[:3] == [302, 302, 302]
    assert codes[3:] == [429, 429]
    assert "Đăng nhập sai quá nhiều lần" in text(resp)
    with limited.app_context():
        db.session.remove()
        db.engine.dispose()


def _config_in_subprocess(env, expr):
    out = subprocess.run(
        [sys.executable, "-c", f"import config; print(({expr},))"], cwd=ROOT,
        env={k: v for k, v in {**os.environ, **env}.items() if v is not None},
        capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_production_mode_sets_secure_cookies_and_no_demo(tmp_path):
    env = {"APP_ENV": "production", "INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k" * 40,
           "DEMO_DATA": None, "SESSION_COOKIE_SECURE": None}
    out = _config_in_subprocess(env, "config.SESSION_COOKIE_SECURE, config.DEMO_DATA_ON_EMPTY_DB,"
                                     " config.SESSION_COOKIE_HTTPONLY, config.REMEMBER_COOKIE_SECURE")
    assert out == "(True, False, True, True)"
    env["APP_ENV"] = "development"
    out = _config_in_subprocess(env, "config.SESSION_COOKIE_SECURE, config.DEMO_DATA_ON_EMPTY_DB")
    assert out == "(False, True)"


def test_secret_key_is_generated_once_and_kept(tmp_path):
    env = {"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": None}
    first = _config_in_subprocess(env, "config.SECRET_KEY")
    second = _config_in_subprocess(env, "config.SECRET_KEY")
    first, second = first.strip("(',)"), second.strip("(',)")
    assert len(first) >= 32 and first == second
    assert (tmp_path / "secret_key").read_text().strip() == first
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"
    other = tmp_path / "other"
    assert _config_in_subprocess({"INSTANCE_PATH": str(other), "SECRET_KEY": None},
                                 "config.SECRET_KEY").strip("(',)") != first
    assert _config_in_subprocess({"INSTANCE_PATH": str(other), "SECRET_KEY": "from-env"},
                                 "config.SECRET_KEY") == "('from-env',)"


def test_database_url_default_and_postgres_spelling(tmp_path):
    env = {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": None}
    assert _config_in_subprocess(env, "config.SQLALCHEMY_DATABASE_URI") == \
        f"('sqlite:///{tmp_path}/thuvien.db',)"
    env["DATABASE_URL"] = "postgresql://u:p@db:5432/thuvien"
    assert _config_in_subprocess(env, "config.SQLALCHEMY_DATABASE_URI") == \
        "('postgresql+psycopg://u:p@db:5432/thuvien',)"


def test_production_start_creates_no_demo_accounts(tmp_path):
    """What `python run.py` does on an empty production database: schema and roles only."""
    script = (
        "from app import create_app\n"
        "from app.core.setup import prepare_database\n"
        "from app.org.models import AppUser, OrgUnit\n"
        "from app.extensions import db\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    prepare_database(load_demo=app.config['DEMO_DATA_ON_EMPTY_DB'])\n"
        "    print(db.session.query(AppUser).count(), db.session.query(OrgUnit).count(),\n"
        "          app.appbuilder.sm.find_role('librarian') is not None)\n")
    env = {**os.environ, "APP_ENV": "production", "INSTANCE_PATH": str(tmp_path),
           "SECRET_KEY": "s" * 40, "DATABASE_URL": f"sqlite:///{tmp_path}/prod.db"}
    env.pop("DEMO_DATA", None)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 0 True"


def test_create_admin_command_bootstraps_an_installation(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-admin", "--username", "quantri", "--email",
                                 "quantri@example.vn", "--password", "ngan"])
    assert result.exit_code != 0 and "ít nhất 8 ký tự" in result.output
    result = runner.invoke(args=["create-admin", "--username", "quantri", "--email",
                                 "quantri@example.vn", "--password", "QuanTri2026"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        from app.core.tenancy import scope_for
        from app.org.models import AppUser

        user = db.session.execute(select(AppUser).where(AppUser.username == "quantri")
                                  ).scalar_one()
        assert user.unit.code == "SGD79" and [r.name for r in user.roles] == ["dept_admin"]
        assert scope_for(db.session, user).all_schools
    assert login(app.test_client(), "quantri", "QuanTri2026").status_code == 302
    result = runner.invoke(args=["create-admin", "--username", "quantri", "--email",
                                 "x@example.vn", "--password", "QuanTri2026"])
    assert result.exit_code != 0 and "đã tồn tại" in result.output
