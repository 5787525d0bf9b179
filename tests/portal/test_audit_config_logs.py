"""The audit chain, production configuration, and logs free of personal data."""

from __future__ import annotations

import logging
import re
import stat
import urllib.error
import urllib.request

import pyotp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from portal.audit import service as audit
from portal.audit.keys import new_hmac_key, new_signing_key
from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.config import ConfigError, load_config
from portal.logsafe import redact
from portal.maintenance.sealed import generate_key as generate_backup_key
from portal.people.models import Guardian
from tests.conftest import PASSWORD, TOTP_SECRET

# -- audit ----------------------------------------------------------------------


def test_audit_chain_verify_detects_tampering(app, make, session):
    steward = auth.principal_for(make.staff("data_steward"))
    child = make.child()
    events = [audit.record(session, steward, "test.action", child_id=child.id, detail={"n": i}) for i in range(4)]
    session.commit()
    ids = [e.id for e in events]
    runner = app.test_cli_runner()

    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 4 rows" in result.output

    # Someone edits a row in the database directly.
    session.execute(text("UPDATE audit_event SET action = 'test.innocent' WHERE id = :id"), {"id": ids[2]})
    session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at row {ids[2]}" in result.output
    assert "altered" in result.output
    assert "2 rows intact before it" in result.output

    # Put it back, then remove a row: the next row is reported.
    session.execute(text("UPDATE audit_event SET action = 'test.action' WHERE id = :id"), {"id": ids[2]})
    session.commit()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0
    session.execute(text("DELETE FROM audit_event WHERE id = :id"), {"id": ids[1]})
    session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at row {ids[2]}" in result.output and "removed" in result.output


def test_audit_rows_cannot_be_changed_or_removed_through_the_application(app, make, session):
    from sqlalchemy import delete, update

    from portal.audit.models import AuditLogIsAppendOnly

    steward = auth.principal_for(make.staff("data_steward"))
    ev = audit.record(session, steward, "test.action", detail={"n": 1})
    session.commit()

    ev.action = "test.innocent"
    with pytest.raises(AuditLogIsAppendOnly):
        session.flush()
    session.rollback()
    session.delete(session.get(AuditEvent, ev.id))
    with pytest.raises(AuditLogIsAppendOnly):
        session.flush()
    session.rollback()
    for stmt in (update(AuditEvent).values(action="test.innocent"), delete(AuditEvent)):
        with pytest.raises(AuditLogIsAppendOnly):
            session.execute(stmt)
        session.rollback()
    row = session.get(AuditEvent, ev.id)
    assert row.action == "test.action" and audit.verify(session).ok


def test_staff_read_of_child_writes_audit_row(app, make, session):
    teacher, cls = make.teacher_with_class(grade=4)
    child = make.child(cls, name="記録 太郎")
    principal = auth.principal_for(teacher)
    ev = audit.record_child_read(session, principal, child.id, "kernel.child_record", purpose="support", request_id="r-1")
    session.commit()

    row = session.scalar(select(AuditEvent).where(AuditEvent.id == ev.id))
    assert (row.actor_kind, row.actor_id, row.role) == ("staff", teacher.id, "teacher")
    assert (row.action, row.child_id, row.purpose, row.request_id) == ("child.read", child.id, "support", "r-1")
    assert row.detail == {"view": "kernel.child_record"}
    assert row.at is not None and row.at.tzinfo is not None
    assert "記録" not in repr(row.detail)
    # The row is chained, and a family sees the read by role and time only.
    assert audit.verify(session).ok
    assert audit.reads_of_child(session, child.id) == [("teacher", row.at)]


# -- configuration ----------------------------------------------------------------


def _production_env(**extra) -> dict[str, str]:
    env = {
        "MIMAMORI_ENV": "production",
        "SECRET_KEY": "a-long-random-production-secret",
        "MIMAMORI_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "MIMAMORI_BACKUP_KEY": generate_backup_key(),
        "MIMAMORI_AUDIT_KEY": new_hmac_key(),
        "MIMAMORI_AUDIT_SIGNING_KEY": new_signing_key(),
        "DATABASE_URL": "postgresql://mimamori@db.example.invalid/mimamori",
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def test_secure_cookie_flags_in_production(tmp_path, monkeypatch, app):
    cfg = load_config(tmp_path, _production_env())
    assert cfg["SESSION_COOKIE_SECURE"] is True
    assert cfg["SESSION_COOKIE_HTTPONLY"] is True
    assert cfg["SESSION_COOKIE_SAMESITE"] in ("Lax", "Strict")
    assert cfg["REMEMBER_COOKIE_SECURE"] is True and cfg["REMEMBER_COOKIE_HTTPONLY"] is True
    assert cfg["DEBUG"] is False and cfg["TESTING"] is False
    assert cfg["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")

    # A production application really sends them (and HSTS).
    from portal import create_app

    for key, value in _production_env(DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MIMAMORI_INSTANCE", str(tmp_path / "instance"))
    prod = create_app()
    resp = prod.test_client().get("/signin", base_url="https://mimamori.example.invalid")
    assert resp.status_code == 200
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("mimamori_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    from portal.extensions import db

    with prod.app_context():
        db.engine.dispose()


def test_development_cookies_work_over_plain_http(tmp_path):
    cfg = load_config(tmp_path, {"MIMAMORI_ENV": "development"})
    assert cfg["SESSION_COOKIE_SECURE"] is False  # `make run` serves http://127.0.0.1
    assert cfg["SESSION_COOKIE_HTTPONLY"] is True


@pytest.mark.parametrize("missing", ["SECRET_KEY", "MIMAMORI_ENCRYPTION_KEY", "MIMAMORI_BACKUP_KEY",
                                     "MIMAMORI_AUDIT_KEY", "MIMAMORI_AUDIT_SIGNING_KEY"])
def test_production_requires_secret_key(tmp_path, missing):
    for value in (None, ""):
        with pytest.raises(ConfigError, match=missing):
            load_config(tmp_path, _production_env(**{missing: value}))
    assert not any((tmp_path / n).exists()
                   for n in ("secret_key", "encryption_key", "backup_key", "audit_key", "audit_signing_key"))


def test_development_secret_key_is_generated_once_and_private(tmp_path):
    first = load_config(tmp_path, {"MIMAMORI_ENV": "development"})
    second = load_config(tmp_path, {"MIMAMORI_ENV": "development"})
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) >= 32
    assert first["MIMAMORI_ENCRYPTION_KEY"] == second["MIMAMORI_ENCRYPTION_KEY"]
    assert first["MIMAMORI_BACKUP_KEY"] == second["MIMAMORI_BACKUP_KEY"]
    assert first["MIMAMORI_BACKUP_KEY"] != first["MIMAMORI_ENCRYPTION_KEY"]
    assert first["MIMAMORI_AUDIT_KEY"] == second["MIMAMORI_AUDIT_KEY"]
    assert first["MIMAMORI_AUDIT_SIGNING_KEY"] == second["MIMAMORI_AUDIT_SIGNING_KEY"]
    for name in ("secret_key", "encryption_key", "backup_key", "audit_key", "audit_signing_key"):
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o600, oct(mode)


def test_unknown_environment_is_refused(tmp_path):
    with pytest.raises(ConfigError):
        load_config(tmp_path, {"MIMAMORI_ENV": "prod"})


# -- logs ------------------------------------------------------------------------


def _all_log_text(records) -> str:
    parts = []
    for r in records:
        parts.append(r.getMessage())
        parts.append(repr(r.args))
        if r.exc_text:
            parts.append(r.exc_text)
    return "\n".join(parts)


def _wait_out_delays(session) -> None:
    """As if each person waited out the short delay a failed sign-in causes."""
    from sqlalchemy import update

    from portal.people.models import Child, Guardian, Staff

    for model in (Child, Guardian, Staff):
        session.execute(update(model).values(login_not_before=None))
    session.commit()


def test_no_personal_data_in_logs(app, client, make, session, post_form, caplog):
    caplog.set_level(logging.DEBUG)
    child = make.child(name="秘密 花子", name_kana="ヒミツ ハナコ", pin="482913", student_no="P20260042")
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], child)
    staff = make.staff("teacher", email="teacher.secret@example.invalid", name="職員 秘密")
    session.commit()
    secrets = ["秘密", "ヒミツ", "482913", "P20260042", code, code.replace("-", ""), "teacher.secret", "parent.secret",
               PASSWORD, "wrong-password-1"]

    # Registration, sign-in failures and successes, a reset request, for every kind of user.
    post_form("/family/register", {"code": code, "name": "秘密 母", "relationship": "mother",
                                   "email": "parent.secret@example.invalid", "password": PASSWORD, "password_again": PASSWORD})
    post_form("/family/register", {"code": code, "name": "秘密 母", "relationship": "mother",
                                   "email": "parent.secret2@example.invalid", "password": PASSWORD, "password_again": PASSWORD},
              c=app.test_client())
    other = app.test_client()
    post_form("/family/signin", {"email": "parent.secret@example.invalid", "password": "wrong-password-1"}, c=other)
    _wait_out_delays(session)
    post_form("/family/signin", {"email": "parent.secret@example.invalid", "password": PASSWORD}, c=other)
    post_form("/family/password-reset", {"email": "parent.secret@example.invalid"}, c=app.test_client())
    kid = app.test_client()
    post_form("/student/signin", {"student_no": "P20260042", "pin": "000000"}, c=kid)
    _wait_out_delays(session)
    post_form("/student/signin", {"student_no": "P20260042", "pin": "482913"}, c=kid)
    staff_client = app.test_client()
    post_form("/staff/signin", {"email": staff.email, "password": "wrong-password-1"}, c=staff_client)
    _wait_out_delays(session)
    post_form("/staff/signin", {"email": staff.email, "password": PASSWORD}, c=staff_client)
    post_form("/staff/totp", {"code": pyotp.TOTP(TOTP_SECRET).now()}, c=staff_client)

    assert session.scalar(select(Guardian).where(Guardian.email == "parent.secret@example.invalid")) is not None
    logged = _all_log_text(caplog.records)
    for secret in secrets:
        assert secret not in logged, f"{secret!r} reached the logs"
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", logged), "an e-mail address reached the logs"


def test_request_logs_carry_no_tokens(app, live_server, make, session, caplog):
    caplog.set_level(logging.INFO)
    child = make.child(name="トークン 太郎")
    card = auth.issue_card_token(child, app.config["SECRET_KEY"])
    session.commit()
    reset_token = "eyJnIjoxLCJoIjoiYWJjZGVmZ2hpamtsbW5vcCJ9.ZzZzZw.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    urls = [
        f"/family/password-reset/{reset_token}",
        f"/student/card?t={card}",
        "/family/signin?next=/family/children/1&email=parent.secret%40example.invalid",
    ]
    for url in urls:
        try:
            with urllib.request.urlopen(live_server + url, timeout=10) as resp:  # noqa: S310 (localhost)
                resp.read()
        except urllib.error.HTTPError as e:
            with e:
                e.read()
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert len(lines) >= 3, lines
    logged = "\n".join(lines)
    for secret in (reset_token, card, "parent.secret", "example.invalid", "next=/family"):
        assert secret not in logged
    assert "/family/password-reset/[token]" in logged
    assert "/student/card?[redacted]" in logged


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('"GET /family/password-reset/eyJnIjoxfQ.aGVsbG8.c2lnbmF0dXJlc2lnbmF0dXJl HTTP/1.1" 400 -',
         '"GET /family/password-reset/[token] HTTP/1.1" 400 -'),
        ('"GET /student/card?t=abc HTTP/1.1" 200 -', '"GET /student/card?[redacted] HTTP/1.1" 200 -'),
        ('"GET /static/app.css HTTP/1.1" 304 -', '"GET /static/app.css HTTP/1.1" 304 -'),
        ('"GET /family/children/42 HTTP/1.1" 404 -', '"GET /family/children/42 HTTP/1.1" 404 -'),
        ("mail to hanako.yamada@example.com failed", "mail to [email] failed"),
        # gunicorn's default access format also logs the Referer
        ('10.0.0.1 - - [x] "GET /static/app.css HTTP/1.1" 200 10 "https://m.example.jp/student/card?t=c2VjcmV0" "UA"',
         '10.0.0.1 - - [x] "GET /static/app.css HTTP/1.1" 200 10 "https://m.example.jp/student/card?[redacted]" "UA"'),
    ],
)
def test_redact(line, expected):
    assert redact(line) == expected


def test_audit_chain_survives_purging_a_child(app, make, session):
    from datetime import date

    from portal.people.models import Child

    steward = auth.principal_for(make.staff("data_steward"))
    child = Child(student_no="PURGE0001", name="削除 予定", name_kana="サクジョ ヨテイ", birth_date=date(2015, 5, 1), sex="F")
    session.add(child)
    session.flush()
    child_id = child.id
    audit.record_child_read(session, steward, child_id, "kernel.child_record", purpose="support")
    audit.record(session, steward, "test.after", detail={"n": 1})
    session.commit()

    session.delete(child)
    session.commit()
    assert audit.verify(session).ok
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert rows[0].child_id == child_id  # who looked stays on record
