"""Command line for administrators and checks (flask --app run ...)."""
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from app.extensions import db


def register_cli(app):
    @app.cli.command("demo-data")
    @with_appcontext
    def demo_data():
        """Load the demo city into an empty database."""
        from app.core.security import sync_roles
        from app.org.demo import DEMO_LOGINS, load_demo_city
        from app.org.models import OrgUnit

        sync_roles(current_app.appbuilder)
        if db.session.query(OrgUnit.id).first() is not None:
            raise click.ClickException("Cơ sở dữ liệu đã có dữ liệu: chỉ nạp dữ liệu mẫu vào "
                                       "cơ sở dữ liệu trống.")
        load_demo_city(db.session)
        click.echo("Đã nạp thành phố mẫu. Tài khoản (mật khẩu thuvien2025):")
        for login, what in DEMO_LOGINS:
            click.echo(f"  {login:<12} {what}")

    @app.cli.command("generate-city")
    @click.option("--scale", type=float, default=0.01, show_default=True,
                  help="1.0 = the whole city (about 3,500 schools)")
    @click.option("--seed", type=int, default=1, show_default=True)
    @click.option("--catalogue/--no-catalogue", default=False, show_default=True,
                  help="Also generate the schools' catalogues and copies (about 10 million "
                       "records and 15 million copies at scale 1.0)")
    @click.option("--circulation/--no-circulation", default=False, show_default=True,
                  help="Also generate the readers and a school year of loans (about 2.6 "
                       "million readers and 50 million loans at scale 1.0); needs --catalogue")
    @with_appcontext
    def generate_city(scale, seed, catalogue, circulation):
        """Generate a city-scale organisation tree and accounts (deterministic)."""
        from app.core.security import sync_roles
        from app.org.generator import generate_city as run

        if circulation and not catalogue:  # loans need the copies
            raise click.UsageError("--circulation cần --catalogue (mượn trả cần bản sách).")
        sync_roles(current_app.appbuilder)
        started = time.perf_counter()
        stats = run(db.session, scale=scale, seed=seed)
        click.echo(f"Đã tạo {stats['schools']} trường, {stats['offices']} phòng/cụm, "
                   f"{stats['users']} tài khoản trong {time.perf_counter() - started:.1f} giây.")
        if catalogue:
            from app.catalog.generator import generate_catalogue

            def n(value):  # 1.234.567
                return f"{value:,}".replace(",", ".")

            def progress(s):
                click.echo(f"  {s['schools_done']}/{s['schools']} trường: {n(s['records'])} "
                           f"biểu ghi, {n(s['copies'])} bản sách ({s['seconds']:.0f} giây)")

            cat = generate_catalogue(db.session, scale=scale, seed=seed, progress=progress)
            click.echo(f"Đã tạo {n(cat['records'])} biểu ghi, {n(cat['copies'])} bản sách, "
                       f"{n(cat['intakes'])} lần nhập kho trong {cat['seconds']:.1f} giây.")
        if circulation:
            from app.circulation.generator import generate_circulation
            from app.readers.generator import generate_readers

            readers = generate_readers(db.session, scale=scale, seed=seed, progress=lambda s: (
                click.echo(f"  {s['schools_done']}/{s['schools']} trường: "
                           f"{n(s['readers'])} bạn đọc ({s['seconds']:.0f} giây)")))
            click.echo(f"Đã tạo {n(readers['readers'])} bạn đọc ({n(readers['students'])} học "
                       f"sinh) trong {readers['seconds']:.1f} giây.")
            loans = generate_circulation(db.session, scale=scale, seed=seed, progress=lambda s: (
                click.echo(f"  {s['schools_done']}/{s['schools']} trường: {n(s['loans'])} "
                           f"lượt mượn ({s['seconds']:.0f} giây)")))
            click.echo(f"Đã tạo {n(loans['loans'])} lượt mượn năm học 2025–2026, "
                       f"{n(loans['open'])} chưa trả ({n(loans['overdue'])} quá hạn), trong "
                       f"{loans['seconds']:.1f} giây.")

    @app.cli.command("stats-refresh")
    @click.option("--school", "schools", multiple=True, help="school code (default: every school)")
    @click.option("--since", default=None, help="first month to recount, dd/mm/yyyy "
                                                 "(default: the start of the school year)")
    @with_appcontext
    def stats_refresh(schools, since):
        """Recount the statistics of many schools (run it every night, e.g. from cron)."""
        import datetime

        from sqlalchemy import select

        from app.org.models import OrgUnit, UnitKind
        from app.statistics.refresh import refresh, vacuum

        ids = None
        if schools:
            ids = db.session.execute(select(OrgUnit.id).where(
                OrgUnit.code.in_(schools), OrgUnit.kind == UnitKind.school)).scalars().all()
            if len(ids) != len(set(schools)):
                raise click.ClickException("Có mã trường không tồn tại.")
        start = None
        if since:
            try:
                start = datetime.datetime.strptime(since, "%d/%m/%Y").date()
            except ValueError:
                raise click.ClickException(f"--since: \"{since}\" không phải ngày dd/mm/yyyy.")
        started = time.perf_counter()
        count = refresh(db.session, ids, since=start)
        db.session.commit()
        if ids is None:  # the nightly run: the pages read the aggregates by index only
            vacuum(db.engine)
        click.echo(f"Đã đếm lại số liệu thống kê của {count} trường trong "
                   f"{time.perf_counter() - started:.1f} giây.")

    @app.cli.command("create-admin")
    @click.option("--username", required=True)
    @click.option("--given-name", default="Quản trị")
    @click.option("--family-name", default="Sở")
    @click.option("--email", required=True)
    @click.option("--department-code", default="SGD79", show_default=True)
    @click.option("--department-name",
                  default="Sở Giáo dục và Đào tạo Thành phố Hồ Chí Minh", show_default=True)
    @click.password_option()
    @with_appcontext
    def create_admin(username, given_name, family_name, email, department_code,
                     department_name, password):
        """First department administrator of a new installation (creates the department)."""
        from werkzeug.security import generate_password_hash

        from app.core.audit import acting_as
        from app.core.security import ROLE_DEPT_ADMIN, password_policy, sync_roles
        from app.org.models import AppUser, OrgUnit, UnitKind

        sync_roles(current_app.appbuilder)
        try:
            password_policy(password)
        except Exception as error:  # PasswordComplexityValidationError
            raise click.ClickException(str(error))
        sm = current_app.appbuilder.sm
        if sm.find_user(username=username):
            raise click.ClickException(f"Tài khoản {username} đã tồn tại.")
        with acting_as(name="cli"):
            dept = db.session.query(OrgUnit).filter_by(code=department_code).one_or_none()
            if dept is None:
                dept = OrgUnit(code=department_code, name=department_name,
                               kind=UnitKind.department)
                db.session.add(dept)
            user = AppUser(username=username, first_name=given_name, last_name=family_name,
                           email=email, active=True, unit=dept,
                           roles=[sm.find_role(ROLE_DEPT_ADMIN)],
                           password=generate_password_hash(password))
            db.session.add(user)
            db.session.commit()
        click.echo(f"Đã tạo tài khoản quản trị Sở {username} ({dept.name}).")

    @app.cli.command("sync-roles")
    @with_appcontext
    def sync_roles_cmd():
        """Create permissions and synchronise the roles defined in code (run at deploy)."""
        from app.core.security import sync_roles

        sync_roles(current_app.appbuilder)
        click.echo("Đã đồng bộ vai trò và quyền.")

    __import__("app.catalog.cli", fromlist=["register"]).register(app)  # marc-import/export
