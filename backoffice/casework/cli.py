"""Casework commands: the daily job by hand (open cases for new flags, send reminders)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext


@click.group("casework", help="Casework: cases, tasks and reminders.")
def casework_group():
    pass


@casework_group.command("remind")
@with_appcontext
def remind():
    """Open cases for new flags and send today's task reminders (the scheduler does this daily)."""
    from backoffice.casework import tasks
    from portal.extensions import db
    from portal.orm import utcnow

    now = utcnow()
    opened = tasks.open_cases_for_new_flags(db.session, now)
    sent = tasks.send_reminders(db.session, now)
    db.session.commit()
    click.echo(f"cases opened: {opened}; people reminded: {sent['reminded']}")


def register(app: Flask) -> None:
    app.cli.add_command(casework_group)
