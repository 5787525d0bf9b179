"""Commands: ``flask resources send-due``, ``record-bounces``, ``import-opendata``, ``export-hsds``."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from portal.auth.principal import SYSTEM
from portal.extensions import db

group = AppGroup("resources", help="Local support resources and campaigns.")


def register(app: Flask) -> None:
    app.cli.add_command(group)


@group.command("send-due")
def send_due():
    """Queue every campaign due now and send queued e-mails (the scheduler runs this too)."""
    from resources.jobs import send_due_campaigns_job

    result = send_due_campaigns_job()
    click.echo(" ".join(f"{k}={v}" for k, v in sorted(result.items())))


@group.command("import-opendata")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_opendata(path: Path):
    """Import a 子育て施設一覧 CSV as drafts."""
    from resources.opendata import import_facilities_csv
    from resources.service import ResourceError

    try:
        result = import_facilities_csv(db.session, SYSTEM, path.read_bytes())
    except ResourceError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc.message)) from exc
    db.session.commit()
    click.echo(f"created={result.created} skipped={result.skipped} problems={len(result.problems)}")
    for line, message in result.problems:
        click.echo(f"  line {line}: {message}")


@group.command("record-bounces")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def record_bounces(paths: tuple[Path, ...]):
    """Mark campaign e-mails failed from bounce messages (.eml files, mbox files or folders)."""
    from resources.bounces import read_messages
    from resources.bounces import record_bounces as record

    result = record(db.session, SYSTEM, read_messages(paths))
    db.session.commit()
    click.echo(" ".join(f"{k}={v}" for k, v in sorted(result.items())))


@group.command("export-hsds")
@click.option("--locale", default="ja", type=click.Choice(["ja", "en"]))
@click.option("--csv", "as_csv", is_flag=True, help="HSDS tabular services.csv instead of JSON.")
@click.option("--zip", "zip_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the whole HSDS tabular data package (a zip of CSV tables) to this file.")
def export_hsds(locale: str, as_csv: bool, zip_path: Path | None):
    """Print the published catalogue as HSDS 3.0 JSON (or services.csv, or write the tables zip)."""
    from resources import hsds, hsds_tabular

    if zip_path:
        zip_path.write_bytes(hsds_tabular.export_datapackage(db.session, locale))
        click.echo(f"written={zip_path}")
        return
    click.echo(hsds.export_csv(db.session, locale) if as_csv else hsds.export_json(db.session, locale))
