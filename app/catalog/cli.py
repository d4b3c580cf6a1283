"""Command line for the catalogue: MARC import and export (flask --app run ...).

    flask --app run marc-import FILE --school CODE [--dry-run] [--duplicates skip|copies|new]
                                     [--no-copies]
    flask --app run marc-export --school CODE --format iso2709|marcxml --output FILE [--ids 1,2]

Messages are in the default language of the installation (Vietnamese).
"""
import sys
import time

import click
from flask.cli import with_appcontext
from flask_babel import gettext
from sqlalchemy import select

from app.extensions import db


def _school(code):
    from app.org.models import OrgUnit, UnitKind

    school = db.session.execute(select(OrgUnit).where(
        OrgUnit.code == code, OrgUnit.kind == UnitKind.school)).scalar_one_or_none()
    if school is None:
        raise click.ClickException(gettext("There is no school with the code %(code)s.",
                                           code=code))
    return school


def _print_result(result, dry_run):
    counts = result.counts
    if dry_run:
        click.echo(gettext("Dry run: nothing was saved."))
    click.echo(gettext("Records read: %(n)d", n=counts["read"]))
    click.echo(gettext("New records: %(n)d", n=counts["created"]))
    click.echo(gettext("Copies: %(n)d", n=counts["copies"]))
    click.echo(gettext("Already in the catalogue: %(n)d (skipped: %(skipped)d; copies added to "
                       "the existing record: %(attached)d)", n=counts["duplicates"],
                       skipped=counts["skipped"], attached=counts["attached"]))
    click.echo(gettext("Records not imported (errors): %(n)d", n=counts["errors"]))
    click.echo(gettext("Warnings: %(n)d", n=counts["warnings"]))
    for problem in result.problems:
        prefix = gettext("Error") if problem.level == "error" else gettext("Warning")
        click.echo(f"  {prefix}: {problem.text()}", err=problem.level == "error")


def register(app):
    @app.cli.command("marc-import")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False))
    @click.option("--school", "code", required=True, help="School code (mã trường)")
    @click.option("--dry-run", is_flag=True, help="Read and check only, save nothing")
    @click.option("--duplicates", type=click.Choice(["skip", "copies", "new"]),
                  default="skip", show_default=True,
                  help="Records already in the catalogue: skip them, add their copies to "
                       "the existing record, or import them as new records")
    @click.option("--no-copies", is_flag=True,
                  help="Do not create copies from the item fields (852/949/952)")
    @with_appcontext
    def marc_import_cmd(path, code, dry_run, duplicates, no_copies):
        """Import a MARC file (ISO 2709 or MARCXML) into a school's catalogue."""
        from app.catalog import marc_import
        from app.core.audit import acting_as
        from app.core.errors import DomainError

        school = _school(code)
        with open(path, "rb") as fh:
            data = fh.read()
        options = marc_import.ImportOptions(duplicates=duplicates,
                                            create_copies=not no_copies)
        started = time.perf_counter()
        if dry_run:
            result = marc_import.preview_import(db.session, school, data, path, options)
            db.session.rollback()
        else:
            def progress(done, total):
                if total and sys.stderr.isatty():
                    click.echo(f"\r{done}/{total}", nl=False, err=True)

            try:
                with acting_as(name="cli"):
                    result = marc_import.run_import(db.session, school, data, path, options,
                                                    on_progress=progress)
            except DomainError as error:
                raise click.ClickException(str(error))
            if sys.stderr.isatty():
                click.echo("", err=True)
        _print_result(result, dry_run)
        click.echo(gettext("Time: %(s).1f s", s=time.perf_counter() - started))
        if result.counts["file_errors"] and not result.outcomes:
            sys.exit(1)

    @app.cli.command("marc-export")
    @click.option("--school", "code", required=True, help="School code (mã trường)")
    @click.option("--format", "fmt", type=click.Choice(["iso2709", "marcxml"]),
                  default="iso2709", show_default=True)
    @click.option("--output", required=True, type=click.Path(dir_okay=False, writable=True))
    @click.option("--ids", default=None, help="Only these record ids (comma separated)")
    @with_appcontext
    def marc_export_cmd(code, fmt, output, ids):
        """Export a school's catalogue (with its copies in 852) as MARC."""
        from app.catalog import marc_import

        school = _school(code)
        wanted = None
        if ids:
            try:
                wanted = [int(v) for v in ids.replace(" ", "").split(",") if v]
            except ValueError:
                raise click.ClickException(gettext("--ids takes record numbers separated by "
                                                   "commas."))
        started = time.perf_counter()
        exporter = marc_import.MarcExport(db.session, school, fmt, wanted)
        with open(output, "wb") as fh:
            for chunk in exporter:
                fh.write(chunk)
        db.session.rollback()
        click.echo(gettext("Exported %(n)d records of %(school)s to %(path)s in %(s).1f s.",
                           n=exporter.count, school=school.code, path=output,
                           s=time.perf_counter() - started))
        if exporter.skipped:
            click.echo(gettext("Records too long for ISO 2709, left out: %(ids)s",
                               ids=", ".join(map(str, exporter.skipped))), err=True)
