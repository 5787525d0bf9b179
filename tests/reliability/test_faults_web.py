"""Faults seen through the pages: the database goes away; the disk fills up during a PDF export.

A lost database gives a clear page (503, in the reader's language) and the
next request works again: on PostgreSQL the database really refuses
connections and every open one is killed (``pg_terminate_backend``); on
SQLite every statement fails with the driver's OperationalError.
"""

from __future__ import annotations

import errno
import sqlite3
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.people.models import Child, Role

DOWN_JA = "データベースに接続できませんでした"
DOWN_EN = "The database could not be reached"


@contextmanager
def database_outage(monkeypatch):
    engine = db.engine
    if engine.dialect.name == "postgresql":
        name = engine.url.database
        admin = sa.create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            killed = c.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                       "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name}).scalar()
        assert killed >= 1  # the application's pooled connections
        try:
            yield
        finally:
            with admin.connect() as c:
                c.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            admin.dispose()
    else:
        def fail(*args, **kwargs):
            raise sqlite3.OperationalError("disk I/O error")

        with monkeypatch.context() as m:
            for name in ("do_execute", "do_execute_no_params", "do_executemany"):
                m.setattr(engine.dialect, name, fail)
            yield


@pytest.fixture
def family(make, session):
    child = make.child(name="見守 花子")
    guardian = make.guardian(child)
    session.commit()
    return guardian, child


def test_lost_database_gives_a_clear_page_and_the_next_request_works(app, session, login, client, family, monkeypatch):
    guardian, child = family
    login(guardian)
    assert client.get("/family/").status_code == 200
    session.remove()  # the test holds no connection either

    with database_outage(monkeypatch):
        resp = client.get("/family/")
        assert resp.status_code == 503
        html = resp.get_data(as_text=True)
        assert DOWN_JA in html and "何も保存されていません" in html
        assert "Traceback" not in html and "OperationalError" not in html
        assert resp.headers["Retry-After"]
        assert client.get("/family/").status_code == 503  # still down: still the same clear page

    resp = client.get("/family/")  # the database is back: the same session goes on, signed in
    assert resp.status_code == 200
    assert "見守 花子" in resp.get_data(as_text=True)


def test_readiness_check_follows_the_database_and_liveness_does_not(app, session, client, monkeypatch):
    assert client.get("/readyz").get_json() == {"status": "ok", "database": "ok"}
    session.remove()
    with database_outage(monkeypatch):
        resp = client.get("/readyz")
        assert resp.status_code == 503
        assert resp.get_json() == {"status": "unavailable", "database": "down"}
        assert client.get("/healthz").status_code == 200  # the process itself is alive
    assert client.get("/readyz").status_code == 200


def test_lost_database_page_in_english(app, session, login, client, make, monkeypatch):
    guardian = make.guardian(make.child(), locale="en")
    session.commit()
    login(guardian)
    with client.session_transaction() as s:
        s["locale"] = "en"  # chosen with the language switcher, kept in the session cookie
    assert client.get("/family/").status_code == 200
    session.remove()
    with database_outage(monkeypatch):
        resp = client.get("/family/")
    assert resp.status_code == 503
    html = resp.get_data(as_text=True)
    assert DOWN_EN in html and "Nothing was saved" in html and DOWN_JA not in html
    assert client.get("/family/").status_code == 200


def _class_with_children(make, n=3):
    school = make.school()
    teacher = make.staff(Role.teacher, schools=[school], locale="ja")
    klass = make.school_class(school, grade=2, teacher=teacher)
    kids = [make.child(klass, pin="123456") for _ in range(n)]
    return teacher, klass, kids


@pytest.mark.parametrize("locale, heading", [("ja", "ディスク"), ("en", "run out of disk space")])
def test_full_disk_during_a_pdf_export_fails_cleanly(app, session, make, login, client, post_form, monkeypatch,
                                                      locale, heading):
    teacher, klass, kids = _class_with_children(make)
    teacher.locale = locale
    session.commit()
    pins = {k.id: k.pin_hash for k in kids}
    url = f"/staff/classes/{klass.id}/cards"
    login(teacher)

    def full(self, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Canvas, "save", full)  # reportlab's writer finds the disk full
    resp = post_form(url, {"confirm": "y"})
    assert resp.status_code == 507
    assert resp.mimetype == "text/html"  # no PDF, not even part of one
    html = resp.get_data(as_text=True)
    assert heading in html
    session.remove()
    # nothing half-done: the old PINs still work, no new cards were recorded
    assert {c.id: c.pin_hash for c in session.scalars(select(Child).where(Child.id.in_(pins)))} == pins
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "people.cards_issued")) is None

    monkeypatch.undo()  # space freed: the same export works
    resp = post_form(url, {"confirm": "y"})
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
