"""Single-use values of registration and passwords, under real parallel requests at a live server.

Each value (an enrolment code, an e-mailed confirmation or reset token, a
temporary staff password) is spent by one guarded statement; here several
browsers use the same one at the same instant (tests/security/parallel.py)
and exactly one wins. On PostgreSQL these are concurrent transactions.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.auth.passwords import verify_password
from portal.extensions import db
from portal.people.models import EnrolmentCode, Guardian, GuardianChild, Staff
from tests.conftest import PASSWORD
from tests.security.parallel import LiveClient, fire_together

N = 6


def signed_in(app, live_server: str, obj) -> LiveClient:
    """A live client carrying a signed-in session for ``obj`` (as conftest.sign_in_as does)."""
    c = LiveClient(live_server)
    principal = auth.principal_for(obj)
    value = app.session_interface.get_signing_serializer(app).dumps(
        {"_user_id": principal.get_id(), "_fresh": True, "last_seen": time.time()}
    )
    # The domain and path the server's own Set-Cookie gets, so its later cookies replace this one.
    c.http.cookies.set(app.config["SESSION_COOKIE_NAME"], value, domain=urlsplit(live_server).hostname, path="/")
    return c


def _count(session, model, *where) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture(autouse=True)
def _end_live_sessions(app):
    yield
    db.session.remove()


def test_enrolment_code_redeemed_once_under_parallel_requests(app, live_server, make, session, outbox):
    child = make.child()
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], child)
    session.commit()
    clients = [LiveClient(live_server) for _ in range(N)]
    tokens = [c.token("/family/register") for c in clients]

    def register(i):
        return lambda: clients[i].post("/family/register", {
            "code": code, "name": f"並行 {i}", "relationship": "mother", "email": f"race{i}@example.invalid",
            "password": PASSWORD, "password_again": PASSWORD,
        }, token=tokens[i])

    answers = fire_together([register(i) for i in range(N)])
    assert not [a for a in answers if isinstance(a, Exception)], answers
    won = [a for a in answers if a.status == 302 and a.url.endswith("/family/register/sent")]
    assert len(won) == 1, [(a.status, a.url) for a in answers]
    assert all(a.status == 200 for a in answers if a not in won)  # the others: "this code cannot be used"
    assert _count(session, Guardian) == 1
    assert _count(session, GuardianChild) == 1
    assert _count(session, EnrolmentCode, EnrolmentCode.used_at.is_not(None)) == 1
    assert len(outbox) == 1


def test_add_child_code_redeemed_once_under_parallel_requests(app, live_server, make, session):
    child = make.child()
    families = [make.guardian(make.child()) for _ in range(4)]
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], child)
    session.commit()
    clients = [signed_in(app, live_server, g) for g in families]
    tokens = [c.token("/family/add-child") for c in clients]
    answers = fire_together([
        (lambda c=c, t=t: c.post("/family/add-child", {"code": code}, token=t)) for c, t in zip(clients, tokens, strict=True)
    ])
    assert not [a for a in answers if isinstance(a, Exception)], answers
    assert sum(a.status == 302 for a in answers) == 1
    assert _count(session, GuardianChild, GuardianChild.child_id == child.id) == 1


def test_reset_token_used_once_under_parallel_requests(app, live_server, make, session):
    guardian = make.guardian(make.child(), email="reset-race@example.invalid")
    token = auth.issue_email_token(session, app.config["SECRET_KEY"], guardian.id, "reset")
    session.commit()
    url = f"/family/password-reset/{token}"
    clients = [LiveClient(live_server) for _ in range(4)]
    csrf = [c.token(url) for c in clients]
    passwords = [f"new password number {i}" for i in range(4)]
    answers = fire_together([
        (lambda i=i: clients[i].post(url, {"password": passwords[i], "password_again": passwords[i]}, token=csrf[i]))
        for i in range(4)
    ])
    assert not [a for a in answers if isinstance(a, Exception)], answers
    won = [i for i, a in enumerate(answers) if a.status == 302]
    assert len(won) == 1, [a.status for a in answers]
    session.expire_all()
    stored = session.get(Guardian, guardian.id).password_hash
    assert [i for i, p in enumerate(passwords) if verify_password(stored, p)] == won  # changed once, by the winner
    assert _count(session, AuditEvent, AuditEvent.action == "auth.password_reset") == 1


def test_confirmation_token_used_once_under_parallel_requests(app, live_server, make, session, outbox):
    child = make.child()
    other = make.guardian(child, email="other-parent@example.invalid")
    guardian = make.guardian(child, email="new-parent@example.invalid", email_confirmed_at=None)
    token = auth.issue_email_token(session, app.config["SECRET_KEY"], guardian.id, "confirm")
    session.commit()
    url = f"/family/confirm/{token}"
    clients = [LiveClient(live_server) for _ in range(4)]
    csrf = [c.token(url) for c in clients]
    answers = fire_together([(lambda c=c, t=t: c.post(url, {}, token=t)) for c, t in zip(clients, csrf, strict=True)])
    assert not [a for a in answers if isinstance(a, Exception)], answers
    assert sum(a.status == 302 for a in answers) == 1, [a.status for a in answers]
    # Told once each: the account, and the child's other guardian.
    assert sorted(m["To"] for m in outbox) == sorted([guardian.email, other.email])
    assert _count(session, AuditEvent, AuditEvent.action == "auth.email_confirmed") == 1


def test_temporary_staff_password_changes_the_password_once_under_parallel_requests(app, live_server, make, session):
    staff = make.staff("teacher", password_change_required=True)
    session.commit()
    clients = [signed_in(app, live_server, staff) for _ in range(3)]
    csrf = [c.token("/staff/account/password") for c in clients]
    passwords = [f"a new staff password {i}" for i in range(3)]
    answers = fire_together([
        (lambda i=i: clients[i].post("/staff/account/password", {
            "current": PASSWORD, "password": passwords[i], "password_again": passwords[i]}, token=csrf[i]))
        for i in range(3)
    ])
    assert not [a for a in answers if isinstance(a, Exception)], answers
    # The winner goes on to the home page; a request that arrives after it finds its session ended.
    won = [i for i, a in enumerate(answers) if a.status == 302 and a.url.endswith("/staff/")]
    assert len(won) == 1, [(a.status, a.url) for a in answers]
    session.expire_all()
    stored = session.get(Staff, staff.id).password_hash
    assert [i for i, p in enumerate(passwords) if verify_password(stored, p)] == won
    assert _count(session, AuditEvent, AuditEvent.action == "auth.password_changed") == 1


def test_one_valid_letter_per_child_when_two_leads_print_at_once(app, live_server, make, session):
    """Reprinting retires the older code; two printings at the same instant still leave one usable code."""
    from datetime import timedelta

    from portal.orm import utcnow
    from portal.people.models import Role

    school = make.school()
    cls = make.school_class(school, grade=2)
    kids = [make.child(cls) for _ in range(3)]
    leads = [make.staff(Role.school_lead, schools=[school]) for _ in range(2)]
    session.commit()
    url = f"/staff/classes/{cls.id}/letters"
    clients = [signed_in(app, live_server, lead) for lead in leads]
    csrf = [c.token(url) for c in clients]
    answers = fire_together([(lambda c=c, t=t: c.post(url, {"confirm": "y"}, token=t)) for c, t in zip(clients, csrf, strict=True)])
    assert not [a for a in answers if isinstance(a, Exception)], answers
    assert [a.status for a in answers] == [200, 200]
    session.expire_all()
    now = utcnow() + timedelta(seconds=1)
    for kid in kids:
        usable = _count(session, EnrolmentCode, EnrolmentCode.child_id == kid.id, EnrolmentCode.used_at.is_(None),
                        EnrolmentCode.expires_at > now)
        assert usable == 1, kid.id
