"""``flask --app portal consent …``: paper forms and the purge job."""

from __future__ import annotations

import click
from flask import Flask

from portal.extensions import db
from portal.transactions import command_transaction


def register(app: Flask) -> None:
    app.cli.add_command(consent_group)


@click.group("consent", help="Consent: paper forms, purges.")
def consent_group():
    pass


@consent_group.command("import-paper")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_paper_cmd(file: str):
    """Import paper consent forms (consent-paper: CSV or XLSX)."""
    from consent.paper import import_paper
    from portal.auth.principal import SYSTEM
    from portal.tabular import TabularError, render_message

    def refused(exc: TabularError) -> str:
        where = f" (line {exc.line})" if exc.line else ""
        return f"File refused{where}: {render_message(exc.message)}"

    with command_transaction(db.session, TabularError, refused):
        report = import_paper(db.session, SYSTEM, file)
    click.echo(f"rows read: {report.read}")
    click.echo(f"recorded: {report.recorded}")
    click.echo(f"already recorded (unchanged): {report.already}")
    click.echo(f"refused: {len(report.refused)}")
    for line, column, message in report.refused:
        col = f" [{column}]" if column else ""
        click.echo(f"  line {line}{col}: {message}")
    if report.unknown_columns:
        click.echo(f"unknown columns ignored: {', '.join(report.unknown_columns)}")


@consent_group.command("run-purges")
def run_purges_cmd():
    """Delete data whose retention window after a withdrawal has ended."""
    from consent.service import run_due_purges

    n = run_due_purges(db.session)
    db.session.commit()
    click.echo(f"purges run: {n}")
