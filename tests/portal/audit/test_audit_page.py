"""The data steward's audit log page: search, paging, chain check; itself audited."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from portal.audit import service as audit
from portal.audit.models import AuditEvent
from portal.auth.principal import SYSTEM
from portal.auth.service import principal_for
from portal.people.models import Role


@pytest.fixture
def steward(make):
    return make.staff(Role.data_steward)


def test_search_by_child_role_action_and_dates(app, make, session, steward, login, client):
    teacher, cls = make.teacher_with_class()
    kid, other = make.child(cls), make.child(cls)
    t = principal_for(teacher)
    audit.record(session, t, "child.read", child_id=kid.id, at=datetime(2026, 5, 1, 1, tzinfo=UTC))
    audit.record(session, t, "child.read", child_id=other.id, at=datetime(2026, 5, 3, 1, tzinfo=UTC))
    audit.record(session, SYSTEM, "job.ran", at=datetime(2026, 5, 2, 1, tzinfo=UTC))
    session.commit()
    login(steward)
    html = client.get(f"/staff/audit/?child_id={kid.id}").get_data(as_text=True)
    assert "1 " in html and f'child_id={kid.id}"' in html and f'child_id={other.id}"' not in html
    html = client.get("/staff/audit/?role=system").get_data(as_text=True)
    assert "<code>job.ran</code>" in html and "<code>child.read</code>" not in html
    html = client.get("/staff/audit/?action=child.read&since=2026-05-02&until=2026-05-03").get_data(as_text=True)
    assert f'child_id={other.id}"' in html and f'child_id={kid.id}"' not in html
    ev = session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.searched").order_by(AuditEvent.id)).all()
    assert len(ev) == 3 and ev[0].detail["filters"] == {"child_id": kid.id} and ev[0].actor_id == steward.id


def test_bad_search_input_is_explained(app, make, session, steward, login, client):
    session.commit()
    login(steward)
    html = client.get("/staff/audit/?child_id=abc&since=2026-05-05&until=2026-05-01").get_data(as_text=True)
    assert html.count('class="error"') == 2
    assert "audit.searched" not in html  # nothing was searched
    html = client.get("/staff/audit/?child_id=-3").get_data(as_text=True)
    assert html.count('class="error"') == 1


def test_paging(app, make, session, steward, login, client):
    for _ in range(55):
        audit.record(session, SYSTEM, "job.ran")
    session.commit()
    login(steward)
    first = client.get("/staff/audit/?action=job.ran").get_data(as_text=True)
    assert "page=2" in first
    second = client.get("/staff/audit/?action=job.ran&page=2").get_data(as_text=True)
    assert second.count("<code>job.ran</code>") == 5


def test_chain_check_reports_intact_and_broken(app, make, session, steward, login, client, post_form):
    for _ in range(3):
        audit.record(session, SYSTEM, "job.ran")
    session.commit()
    login(steward)
    html = post_form("/staff/audit/verify", {}, page="/staff/audit/", follow_redirects=True).get_data(as_text=True)
    assert "flash-success" in html
    victim = session.scalar(select(AuditEvent.id).where(AuditEvent.action == "job.ran").order_by(AuditEvent.id).limit(1))
    # Tampering goes around the application (which refuses to change a row): straight to the table.
    session.execute(update(AuditEvent.__table__).where(AuditEvent.__table__.c.id == victim).values(action="job.edited"))
    session.commit()
    html = post_form("/staff/audit/verify", {}, page="/staff/audit/", follow_redirects=True).get_data(as_text=True)
    assert "flash-error" in html and str(victim) in html
    results = [e.detail for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.verified").order_by(AuditEvent.id))]
    assert results[0]["ok"] is True
    assert {k: results[1][k] for k in ("ok", "first_broken_id", "problems")} == {"ok": False, "first_broken_id": victim,
                                                                                 "problems": 1}


def test_verify_needs_csrf(app, make, session, steward, login, client):
    session.commit()
    login(steward)
    assert client.post("/staff/audit/verify").status_code == 400
