"""Application factory: one web application for every school of the city."""
import gc
import json
import logging
import os

from flask import Flask, render_template
from flask_appbuilder import AppBuilder
from markupsafe import Markup

from app.extensions import csrf, db, migrate

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(config_overrides=None):
    app = Flask(__name__, instance_path=os.environ.get(
        "INSTANCE_PATH", os.path.join(BASE_DIR, "instance")))
    app.config.from_object("config")
    if config_overrides:
        app.config.update(config_overrides)
    app.config.setdefault("FAB_BASE_TEMPLATE", "app/baselayout.html")
    from app.core.signing import VerifiedSessionInterface

    app.session_interface = VerifiedSessionInterface()  # verified cookies kept per worker
    from app.core.security import password_policy

    app.config.setdefault("FAB_PASSWORD_COMPLEXITY_VALIDATOR", password_policy)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("flask_appbuilder").setLevel(logging.WARNING)

    from app import models  # noqa: F401  (every model, before mappers configure)
    from app.core import audit, i18n, tenancy  # noqa: F401  (register listeners)
    from app.core.i18n_forms import install_form_translations

    install_form_translations()
    i18n.compile_catalogues(app.config["BABEL_TRANSLATION_DIRECTORIES"])
    with app.app_context():
        db.init_app(app)
        from app.core import pool

        if not app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_pre_ping"):
            pool.install(db.engine, app.config["SQLALCHEMY_PING_AFTER_IDLE_S"])
        migrate.init_app(app, db, directory=os.path.join(BASE_DIR, "migrations"))
        csrf.init_app(app)
        appbuilder = AppBuilder()
        appbuilder.init_app(app, db.session)
        i18n.cache_locales(app)
        from app.core.registry import register_views

        register_views(appbuilder)
        _register_template_helpers(app)
        _register_error_pages(app)
        from app.core.cli import register_cli

        register_cli(app)
        if app.config["SYNC_ROLES_ON_START"]:
            from app.core.setup import sync_if_ready

            sync_if_ready(app)
    # The application's objects (a quarter of a million: FAB, SQLAlchemy, the catalogues) live
    # as long as the process: kept out of the collector's full passes, which would otherwise
    # walk them all again every so often, in the middle of a request.
    gc.freeze()
    return app


def vn_number(n):
    """1234 -> "1.234"; a ratio 1234.5 -> "1.234,50" (Vietnamese separators)."""
    if isinstance(n, str):  # "–": nothing to measure
        return n
    if isinstance(n, float):
        return f"{n:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{n:,}".replace(",", ".")


def _register_template_helpers(app):
    from app.core.i18n import format_date

    import datetime

    app.jinja_env.filters["vn_date"] = format_date
    app.jinja_env.filters["vn_datetime"] = format_date
    app.jinja_env.filters["vn_number"] = vn_number

    def tojson_charts(charts):
        plain = [{k: (str(v) if not isinstance(v, (list, bool, int, float)) else
                      [str(x) if not isinstance(x, (int, float)) else x for x in v]
                      if isinstance(v, list) else v)
                  for k, v in c.items()} for c in charts]
        return Markup(json.dumps(plain, ensure_ascii=False).replace("</", "<\\/"))

    app.jinja_env.filters["tojson_charts"] = tojson_charts
    from app.catalog.services import hyphenate_isbn

    app.jinja_env.filters["isbn"] = hyphenate_isbn

    from flask_babel import get_locale

    @app.context_processor
    def _globals():
        return {"today": datetime.date.today(), "get_locale": get_locale}


def _register_error_pages(app):
    from flask_babel import gettext

    def page(code, message):
        from flask import g
        from flask_login import current_user

        # Errors raised before FAB's before_request (CSRF) still render the menu.
        if "user" not in g:
            g.user = current_user
        return render_template("app/error.html", code=code, message=message,
                               base_template=app.appbuilder.base_template,
                               appbuilder=app.appbuilder), code

    @app.errorhandler(403)
    def forbidden(_e):
        return page(403, gettext("Access is Denied"))

    @app.errorhandler(404)
    def not_found(_e):
        return page(404, gettext("Page not found."))

    @app.errorhandler(429)
    def too_many(_e):
        return page(429, gettext("Too many login attempts. Please wait a minute and try "
                                 "again."))

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def csrf_error(_e):
        return page(400, gettext("The form has expired or is invalid. Reload the page and "
                                 "try again."))

    from app.core.errors import DomainError

    @app.errorhandler(DomainError)
    def domain_error(e):
        return page(e.status, str(e))
