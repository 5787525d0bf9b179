"""Set-up: one Alembic head whose schema equals the models; the demo loads and its sign-ins work."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pyotp
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, func, select

from portal.extensions import db
from portal.people.models import Child, Guardian, GuardianChild, Role, School, SchoolKind, Staff

ROOT = Path(__file__).resolve().parents[2]


def _describe(change) -> str:
    """One short line per schema difference (op and the object's name)."""
    if isinstance(change, list):  # column modifications come as a list of tuples
        return "; ".join(_describe(c) for c in change)
    op, *rest = change
    names = [getattr(x, "name", None) or str(x) for x in rest if x is not None][:3]
    return f"{op}: {', '.join(map(str, names))}"


def test_alembic_single_head_and_migrations_match_models(tmp_path, app):
    cfg = Config()
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    heads = ScriptDirectory.from_config(cfg).get_heads()
    assert len(heads) == 1, f"several Alembic heads: {heads}"

    from portal import create_app

    url = f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
    migrated = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "migration-test", "MAIL_BACKEND": "memory"})
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        # The test's own application context is active; the CLI would reuse it
        # (and migrate the test database), so push the new application's.
        with migrated.app_context():
            result = migrated.test_cli_runner().invoke(args=["db", "upgrade"])
    finally:  # Alembic's env.py reconfigures logging; give the test run its own back
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
    assert result.exit_code == 0, result.output + repr(result.exception)

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            mc = MigrationContext.configure(conn, opts={"compare_type": True})
            assert mc.get_current_revision() == heads[0]
            diff = compare_metadata(mc, db.metadata)
    finally:
        engine.dispose()
        with migrated.app_context():
            db.engine.dispose()
    assert diff == [], (
        "the migrated schema differs from the models; regenerate with scripts/regen_migration.sh:\n"
        + "\n".join(_describe(d) for d in diff[:40])
    )


def test_demo_load(app, session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "load"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    out = result.output
    assert "Loaded the demo municipality" in out

    schools = session.scalars(select(School)).all()
    assert sum(s.kind == SchoolKind.elementary for s in schools) >= 3
    assert sum(s.kind == SchoolKind.junior_high for s in schools) >= 1
    n_children = session.scalar(select(func.count()).select_from(Child))
    assert n_children >= 400
    without_guardian = session.scalar(
        select(func.count()).select_from(Child).where(~Child.id.in_(select(GuardianChild.child_id)))
    )
    assert without_guardian == 0
    roles = {r for (r,) in session.execute(select(Staff.role).distinct())}
    assert roles == set(Role)
    # Plainly fictional: the municipality and schools say so.
    assert all("架空" in s.name or "みまもり市" in s.name for s in schools)

    # Loading again does nothing.
    again = runner.invoke(args=["demo", "load"])
    assert again.exit_code == 0 and "not loaded" in again.output
    assert session.scalar(select(func.count()).select_from(Child)) == n_children

    # The printed sign-ins work.
    guardian = re.search(r"guardian \(registered\)\s+(\S+)\s+password (\S+)", out)
    student = re.search(r"student \(grade 2\)\s+(\S+)\s+PIN (\d+)", out)
    teacher = re.search(r"staff: teacher[^\n]*?\s(\S+@\S+)\s+password (\S+), TOTP key (\w+)", out)
    code = re.search(r"enrolment code\s+\S+\s+(\S+)", out)
    assert guardian and student and teacher and code, out

    from tests.conftest import csrf_token_from

    def post(c, url, data):
        token = csrf_token_from(c.get(url).get_data(as_text=True))
        return c.post(url, data={"csrf_token": token, **data})

    g = app.test_client()
    r = post(g, "/family/signin", {"email": guardian.group(1), "password": guardian.group(2)})
    assert r.status_code == 302 and r.headers["Location"].endswith("/family/"), r.get_data(as_text=True)[-600:]
    assert g.get("/family/").status_code == 200

    s = app.test_client()
    r = post(s, "/student/signin", {"student_no": student.group(1), "pin": student.group(2)})
    assert r.status_code == 302 and r.headers["Location"].endswith("/student/")

    t = app.test_client()
    r = post(t, "/staff/signin", {"email": teacher.group(1), "password": teacher.group(2)})
    assert r.headers["Location"].endswith("/staff/totp")
    r = post(t, "/staff/totp", {"code": pyotp.TOTP(teacher.group(3)).now()})
    assert r.status_code == 302 and t.get("/staff/").status_code == 200

    n = app.test_client()
    r = post(n, "/family/register", {"code": code.group(1), "name": "デモ 登録", "relationship": "father",
                                     "email": "new-family@demo.mimamori.invalid", "password": "demo-new-pass", "password_again": "demo-new-pass"})
    assert r.status_code == 302, r.get_data(as_text=True)[-600:]
    session.expire_all()
    new = session.scalar(select(Guardian).where(Guardian.email == "new-family@demo.mimamori.invalid"))
    assert new is not None and len(new.child_links) == 1
