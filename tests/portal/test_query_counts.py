"""Kernel pages query the database a fixed number of times, whatever the number of rows."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from portal.audit import service as audit
from portal.auth.principal import SYSTEM
from portal.extensions import db
from portal.people.models import Role


@contextmanager
def counting():
    box = {"n": 0}

    def _on(conn, cursor, statement, *_a, **_k):
        box["n"] += 1

    event.listen(db.engine, "before_cursor_execute", _on)
    try:
        yield box
    finally:
        event.remove(db.engine, "before_cursor_execute", _on)


def _queries(client, url: str) -> int:
    client.get(url)  # warm: the first request of a client fills caches (translations, CSRF token)
    with counting() as box:
        resp = client.get(url)
    assert resp.status_code == 200, url
    return box["n"]


def _guardian_home(app, make, session, login, n: int) -> int:
    school = make.school()
    children = [make.child(make.school_class(school, grade=g, name=str(g))) for g in range(1, n + 1)]
    guardian = make.guardian(*children)
    session.commit()
    return _queries(login(guardian, app.test_client()), "/family/")


def _lead_classes(app, make, session, login, n: int) -> int:
    school = make.school()
    for g in range(1, n + 1):
        t = make.staff(Role.teacher, schools=[school])
        cls = make.school_class(school, grade=g, name="1", teacher=t)
        for _ in range(3):
            make.child(cls)
    lead = make.staff(Role.school_lead, schools=[school])
    session.commit()
    return _queries(login(lead, app.test_client()), "/staff/classes/")


def _audit_log(app, make, session, login, n: int) -> int:
    child = make.child()
    for _ in range(n):
        audit.record(session, SYSTEM, "job.ran", child_id=child.id)
    steward = make.staff(Role.data_steward)
    session.commit()
    return _queries(login(steward, app.test_client()), "/staff/audit/?action=job.ran")


def _staff_list(app, make, session, login, n: int) -> int:
    school = make.school()
    for _ in range(n):
        make.staff(Role.teacher, schools=[school])
    admin = make.staff(Role.administrator)
    session.commit()
    return _queries(login(admin, app.test_client()), "/staff/admin/staff")


PAGES = {"family home": _guardian_home, "classes": _lead_classes, "audit log": _audit_log, "staff list": _staff_list}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_query_count_does_not_grow_with_rows(app, make, session, login, page):
    from tests.conftest import _empty_tables

    few = PAGES[page](app, make, session, login, 2)
    session.remove()
    _empty_tables()
    many = PAGES[page](app, make, session, login, 6)
    assert many == few, f"{page}: {few} queries for 2 rows, {many} for 6"
