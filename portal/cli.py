"""Commands of the kernel: demo data, audit verification, key rotation."""

from __future__ import annotations

import click
from flask import Flask, current_app

from portal.extensions import db


def register(app: Flask) -> None:
    app.cli.add_command(demo)
    app.cli.add_command(audit_group)
    from portal.scheduler import register_cli as register_scheduler_cli

    register_scheduler_cli(app)


@click.group(help="The demo municipality (synthetic, fictional).")
def demo():
    pass


@demo.command("load")
@click.option("--force", is_flag=True, help="Load even if the database is not empty.")
@click.option("--children-per-class", default=22, show_default=True)
def demo_load(force: bool, children_per_class: int):
    """Load the demo municipality into an empty database and print the sign-ins."""
    from portal import demo as demo_data

    if not demo_data.is_empty(db.session) and not force:
        click.echo("The database already holds data; the demo was not loaded.")
    else:
        ctx = demo_data.load(db.session, current_app.config["SECRET_KEY"], children_per_class=children_per_class)
        db.session.commit()
        click.echo(f"Loaded the demo municipality: {len(ctx.schools)} schools, {len(ctx.children)} children, "
                   f"{len(ctx.guardians)} guardians, {len(ctx.staff)} staff.")
    _print_logins()


@demo.command("logins")
def demo_logins():
    """Print the demo sign-ins again."""
    _print_logins()


@demo.command("totp")
@click.argument("email")
def demo_totp(email: str):
    """Print the current TOTP code of a demo staff account (demo only)."""
    from portal import demo as demo_data

    click.echo(demo_data.current_totp(email))


def _print_logins():
    from portal import demo as demo_data

    if demo_data.is_empty(db.session):
        return
    click.echo("")
    click.echo("Demo sign-ins (all people are fictional):")
    for who, user, secret in demo_data.logins(db.session, current_app.config["SECRET_KEY"]):
        click.echo(f"  {who:<42} {user:<36} {secret}")
    click.echo("  Staff TOTP codes: `.venv/bin/flask --app portal demo totp EMAIL` prints the current code.")


@click.group("audit", help="The audit log.")
def audit_group():
    pass


@audit_group.command("verify")
def audit_verify():
    """Check the hash chain; report the first broken link."""
    from portal.audit.service import verify

    result = verify(db.session)
    if result.ok:
        click.echo(f"audit log intact: {result.checked} rows checked")
        return
    click.echo(f"audit log BROKEN at row {result.first_broken_id}: {result.reason} ({result.checked} rows intact before it)")
    raise SystemExit(1)
