"""Commands: backup, restore and encryption key rotation.

    flask --app portal backup OUT
    flask --app portal restore IN [--force]
    flask --app portal crypto rotate
    flask --app portal crypto backup-key
"""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from portal.extensions import db
from portal.transactions import command_transaction


def register(app: Flask) -> None:
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)
    app.cli.add_command(crypto_group)


@click.command("backup")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def backup_command(out: str):
    """Write a backup of the whole database to OUT, encrypted with the first key of MIMAMORI_BACKUP_KEY."""
    from portal.maintenance.service import BackupError, backup

    try:
        result = backup(db.engine, out, keys=current_app.config.get("MIMAMORI_BACKUP_KEY") or "")
    except BackupError as exc:
        click.echo(f"backup failed: {exc}", err=True)
        sys.exit(1)
    click.echo(f"backup written to {out} (encrypted with MIMAMORI_BACKUP_KEY): schema revision "
               f"{result.revision}, {len(result.tables)} tables, {result.rows} rows")


@click.command("restore")
@click.argument("src", metavar="IN", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace everything in a database that is not empty.")
@click.option("--allow-plaintext", is_flag=True,
              help="Also accept an unencrypted backup (one made before backups were encrypted).")
@with_appcontext
def restore_command(src: str, force: bool, allow_plaintext: bool):
    """Restore a backup into this database (decrypted with MIMAMORI_BACKUP_KEY; one transaction,
    authenticated and verified before it commits)."""
    from portal.maintenance.service import BackupError, restore

    with command_transaction(db.session, BackupError, lambda exc: f"restore refused: {exc}"):
        result = restore(db.session, src, keys=current_app.config.get("MIMAMORI_BACKUP_KEY"), force=force,
                         allow_plaintext=allow_plaintext)
    click.echo(f"restored {src}: schema revision {result.revision}, {len(result.tables)} tables, "
               f"{result.rows} rows, counts and hashes verified")


@click.group("crypto", help="Encryption at rest (MIMAMORI_ENCRYPTION_KEY, MIMAMORI_BACKUP_KEY).")
def crypto_group():
    pass


@crypto_group.command("rotate")
@with_appcontext
def crypto_rotate():
    """Re-encrypt every encrypted value with the first key of MIMAMORI_ENCRYPTION_KEY."""
    from portal.maintenance.rotation import RotationError, rotate_all

    with command_transaction(db.session, RotationError, lambda exc: f"rotation failed: {exc}"):
        result = rotate_all(db.session, current_app.config["MIMAMORI_ENCRYPTION_KEY"])
    click.echo(f"checked {result.checked} encrypted values, re-encrypted {result.total} with the first key")
    for column, n in sorted(result.rotated.items()):
        click.echo(f"  {column}: {n}")


@crypto_group.command("backup-key")
def crypto_backup_key():
    """Print a new random key for MIMAMORI_BACKUP_KEY (put it first to rotate; keep the old ones after it)."""
    from portal.maintenance.sealed import generate_key

    click.echo(generate_key())
