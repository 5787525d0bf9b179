from __future__ import annotations

import pytest

from portal.auth.principal import Principal


@pytest.fixture
def as_guardian():
    def _p(guardian) -> Principal:
        return Principal(kind="guardian", id=guardian.id, role="guardian")

    return _p


@pytest.fixture
def as_staff():
    def _p(staff) -> Principal:
        return Principal(kind="staff", id=staff.id, role=staff.role.value)

    return _p


@pytest.fixture
def queries_for(app):
    """GET a page and count the SQL statements it ran."""
    from sqlalchemy import event

    from portal.extensions import db

    def _count(client, url: str) -> int:
        db.session.commit()
        db.session.expunge_all()  # a fresh identity map, as in a real request
        seen = []

        def before(conn, cursor, statement, *a):
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            resp = client.get(url)
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        assert resp.status_code == 200, url
        return len(seen)

    return _count
