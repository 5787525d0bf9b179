"""``flask --app portal screening …``: run the rules, train the model."""

from __future__ import annotations

import click
from flask import Flask

from portal.extensions import db
from portal.transactions import command_transaction


def register(app: Flask) -> None:
    app.cli.add_command(screening_group)


@click.group("screening", help="Screening: run the active rules, train the optional model.")
def screening_group():
    pass


@screening_group.command("run")
@click.option("--as-of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="Screen as of this date (default today).")
def run_cmd(as_of):
    """Run the active rule set over every consented child."""
    from backoffice.screening.service import ScreeningError, run_screening
    from portal.auth.principal import SYSTEM

    with command_transaction(db.session, ScreeningError, lambda err: f"refused: {err}"):
        run = run_screening(db.session, SYSTEM, trigger="cli", as_of=as_of.date() if as_of else None)
    for key, value in run.counts.items():
        click.echo(f"{key}: {value}")


@screening_group.command("train")
def train_cmd():
    """Train the model on the teacher decisions (it stays off until switched on)."""
    from backoffice.screening import model as ml
    from backoffice.screening.service import ScreeningError
    from portal.auth.principal import SYSTEM

    with command_transaction(db.session, ScreeningError, lambda err: f"refused: {err}"):
        m = ml.train(db.session, SYSTEM)
    click.echo(f"model {m.id}: auc={m.card['auc']} rules={m.card['auc_rules']} school={m.card['auc_school']} "
               f"beats_baselines={m.beats_baselines}")
