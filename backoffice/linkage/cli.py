"""Commands of the import contract (../shared/admin-data-formats.md):

    flask --app portal roster import FILE
    flask --app portal linkage import SOURCE FILE
    flask --app portal linkage export OUT.csv
    flask --app portal linkage purge-expired
    flask --app portal linkage rollback BATCH_ID

Each import prints its report and exits non-zero only when the file as a
whole is refused.
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import with_appcontext

from portal.extensions import db
from portal.transactions import command_transaction


def register(app: Flask) -> None:
    app.cli.add_command(roster_group)
    app.cli.add_command(linkage_group)


def _run_import(source: str, path: str) -> None:
    import time

    from backoffice.linkage.importer import service
    from portal.auth.principal import SYSTEM
    from portal.tabular import TabularError, render_message

    started = time.perf_counter()
    def rejected(exc: TabularError) -> str:
        where = "".join([f" (line {exc.line}" if exc.line else "", f", column {exc.column}" if exc.column and exc.line else "",
                         ")" if exc.line else ""])
        return f"rejected: {render_message(exc.message)}{where}"

    with command_transaction(db.session, TabularError, rejected, exit_code=2):
        report = service.import_file(db.session, SYSTEM, source, Path(path), filename=Path(path).name)
    from flask import current_app
    from flask_babel import force_locale

    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "ja")):
        for line in report.lines():
            click.echo(line)
    click.echo(f"elapsed: {time.perf_counter() - started:.2f} s")


@click.group("roster", help="The school roster (children master).")
def roster_group():
    pass


@roster_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def roster_import(file: str):
    """Create or update schools, classes, children and enrolments for the current year."""
    _run_import("roster", file)


@click.group("linkage", help="Administrative data linkage (名寄せ).")
def linkage_group():
    pass


@linkage_group.command("import")
@click.argument("source")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def linkage_import(source: str, file: str):
    """Import FILE of SOURCE (a key of the data item catalogue) and link it."""
    _run_import(source, file)


@linkage_group.command("export")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def linkage_export(out: str):
    """Write every stored record: source, batch, source_row, student_no, method, score, status."""
    from backoffice.linkage.importer import service
    from portal.tabular import write_csv

    n = write_csv(out, service.EXPORT_HEADER, service.export_rows(db.session), bom=False)
    click.echo(f"exported {n} records to {out}")


@linkage_group.command("purge-expired")
@with_appcontext
def linkage_purge_expired():
    """Delete linked records past the data item catalogue's retention."""
    from backoffice.linkage.importer import service

    removed = service.purge_expired(db.session)
    db.session.commit()
    click.echo(f"removed {removed} expired records")


@linkage_group.command("rollback")
@click.argument("batch_id", type=int)
@with_appcontext
def linkage_rollback(batch_id: int):
    """Remove what an import batch stored."""
    from backoffice.linkage.importer import service
    from portal.auth.principal import SYSTEM

    removed = service.rollback_batch(db.session, SYSTEM, batch_id)
    db.session.commit()
    click.echo(f"batch {batch_id}: removed {removed} records")
