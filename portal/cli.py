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
@click.option("--checkpoint", "extra", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Also hold the log to this checkpoint (e.g. one kept from the stewards' e-mail).")
def audit_verify(extra: tuple[str, ...]):
    """Check the whole log: MACs, links, sequence numbers, and every signed checkpoint."""
    from datetime import timedelta

    from sqlalchemy import func, select

    from portal.audit import checkpoint as ckpt
    from portal.audit import note
    from portal.audit.models import AuditEvent
    from portal.audit.service import verify
    from portal.orm import utcnow

    checkpoints, bad = ckpt.load_all()
    for path in extra:
        try:
            checkpoints.append(ckpt.read_file(path))
        except (note.NoteError, UnicodeDecodeError) as exc:
            bad.append((ckpt.Path(path), str(exc)))
    result = verify(db.session, checkpoints=checkpoints)
    for path, why in bad:
        click.echo(f"checkpoint {path}: {why}")
    if result.unchained:
        click.echo(f"{result.unchained} rows are written and not chained yet (the sequencer runs every minute)")
    if result.ok and not bad:
        click.echo(f"audit log intact: {result.checked} rows checked, sequence 1 to {result.tree_size} without gaps, "
                   f"{result.checkpoints} signed checkpoints match")
    else:
        first = result.findings[0] if result.findings else None
        if first is not None and first.id is not None:
            click.echo(f"audit log BROKEN at row {first.id}: {first.message} "
                       f"({result.intact} rows intact before it; {len(result.findings)} problems in {result.checked} rows)")
        else:
            click.echo(f"audit log BROKEN: {len(result.findings) + len(bad)} problems")
        for f in result.findings:
            click.echo(f"  [{f.kind}] {f.message}")
    if result.covered:
        click.echo(f"the last signed checkpoint covers rows 1 to {result.covered}.")
    elif checkpoints:
        click.echo(f"{len(checkpoints)} signed checkpoints were found; none matches the log as it is now (see above).")
    else:
        click.echo("no signed checkpoint covers the log yet (flask --app portal audit checkpoint).")
        oldest = db.session.scalar(select(func.min(AuditEvent.at)))
        if oldest is not None and oldest < utcnow() - timedelta(hours=2):
            click.echo("WARNING: the log has rows older than two hours but no signed checkpoint was found; checkpoints "
                       "are written every hour, so their folder may have been emptied or moved. Check the log against "
                       "a checkpoint the data stewards received by e-mail: audit verify --checkpoint FILE.")
    click.echo(f"WARNING: the {result.uncovered} rows written after the last checkpoint can still be cut unseen "
               "(from the end of the log, or taken out of the chain for the sequencer to chain the rest again) by "
               "someone who can write to the database; only the next checkpoint protects them.")
    if not result.ok or bad:
        raise SystemExit(1)


@audit_group.command("checkpoint")
@click.option("--no-mail", is_flag=True, help="Do not e-mail the checkpoint to the data stewards.")
def audit_checkpoint(no_mail: bool):
    """Verify the log, then sign a checkpoint, store it and e-mail it to the data stewards."""
    from portal.audit.checkpoint import AuditLogBroken, write

    try:
        written = write(db.session, mail=not no_mail)
    except AuditLogBroken as exc:
        click.echo(f"{exc}; run flask --app portal audit verify", err=True)
        raise SystemExit(1) from None
    if written.path is None:
        click.echo(f"the log has not grown since the last checkpoint ({written.size} rows); nothing written")
    else:
        click.echo(f"checkpoint of {written.size} rows written to {written.path}, mailed to {written.mailed} data stewards")
    click.echo(written.text, nl=False)


@audit_group.command("public-key")
def audit_public_key():
    """Print the verifier key(s) of the checkpoint signing key(s), in signed-note form (give them to the stewards)."""
    from portal.audit.keys import current

    for vkey in current().verifier_keys():
        click.echo(vkey)


@audit_group.command("sequence")
def audit_sequence():
    """Chain every committed, unchained row now (the scheduler does this every minute)."""
    from portal.audit.service import sequence

    click.echo(f"{sequence(db.engine, wait=True)} rows chained")
