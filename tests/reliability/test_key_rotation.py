"""Rotating MIMAMORI_ENCRYPTION_KEY: `flask --app portal crypto rotate`."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from portal import demo
from portal.audit.models import AuditEvent
from portal.maintenance.rotation import encrypted_columns


def _plain(session):
    return {f"{t.name}.{c.name}": sorted(v for v in session.execute(sa.select(c).where(c.is_not(None))).scalars())
            for t, c in encrypted_columns()}


def _raw(session):
    out = {}
    for t, c in encrypted_columns():
        raw = sa.table(t.name, sa.column(c.name, sa.Text()))
        out[f"{t.name}.{c.name}"] = sorted(session.execute(sa.select(raw.c[c.name]).where(raw.c[c.name].is_not(None))).scalars())
    return out


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def test_rotation_re_encrypts_every_value_so_the_old_key_can_go(app, session, cli, monkeypatch):
    old = app.config["MIMAMORI_ENCRYPTION_KEY"]
    demo.load(session, app.config["SECRET_KEY"], children_per_class=2)
    session.commit()
    plain, raw = _plain(session), _raw(session)
    total = sum(len(v) for v in plain.values())
    assert total > 10 and sum(1 for v in plain.values() if v) >= 5

    new = Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "MIMAMORI_ENCRYPTION_KEY", f"{new},{old}")
    res = cli.invoke(args=["crypto", "rotate"])
    assert res.exit_code == 0, res.output
    assert f"checked {total} encrypted values, re-encrypted {total} with the first key" in res.output
    ev = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "maintenance.key_rotation")).one()
    assert ev.detail["rotated"] == total  # counts only

    session.remove()
    monkeypatch.setitem(app.config, "MIMAMORI_ENCRYPTION_KEY", new)  # the old key is gone
    assert _plain(session) == plain
    after = _raw(session)
    assert all(not set(after[k]) & set(raw[k]) for k in raw)  # every stored value changed

    monkeypatch.setitem(app.config, "MIMAMORI_ENCRYPTION_KEY", f"{new},{old}")
    res = cli.invoke(args=["crypto", "rotate"])
    assert "re-encrypted 0 with the first key" in res.output  # nothing left under the old key
    assert _raw(session) == after


def test_rotation_with_a_key_that_cannot_read_the_data_changes_nothing(app, session, cli, monkeypatch):
    demo.load(session, app.config["SECRET_KEY"], children_per_class=2)
    session.commit()
    raw = _raw(session)
    monkeypatch.setitem(app.config, "MIMAMORI_ENCRYPTION_KEY", Fernet.generate_key().decode())
    res = cli.invoke(args=["crypto", "rotate"])
    assert res.exit_code == 1
    assert "cannot be read with any configured key; nothing was changed" in res.output
    session.remove()
    assert _raw(session) == raw
