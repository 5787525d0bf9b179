"""Sign-in values used once under real concurrency (issue 12, item 4: TOTP steps, cards, guesses).

Each test commits its data, prepares one LiveClient per visitor, and fires
their requests at the live server in the same instant; on PostgreSQL these
are concurrent transactions. The property is asserted on what the server
answered and what the database holds.
"""

from __future__ import annotations

import pyotp
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.extensions import db
from portal.people.models import Child, Staff
from tests.conftest import PASSWORD, TOTP_SECRET
from tests.security.parallel import Answer, LiveClient, fire_together


def _sign_ins(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "auth.sign_in"))


def test_totp_code_accepted_once_under_parallel_sign_ins(live_server, make, session):
    staff = make.staff("counsellor")
    session.commit()
    code = pyotp.TOTP(TOTP_SECRET).now()
    clients, tokens = [], []
    for _ in range(4):  # four browsers, each past the password step
        c = LiveClient(live_server)
        r = c.post_form("/staff/signin", {"email": staff.email, "password": PASSWORD})
        assert r.status == 302 and r.url.endswith("/staff/totp"), r.status
        clients.append(c)
        tokens.append(c.token("/staff/totp"))
    answers = fire_together([
        (lambda c=c, t=t: c.post("/staff/totp", {"code": code}, token=t)) for c, t in zip(clients, tokens, strict=True)
    ])
    assert all(isinstance(a, Answer) for a in answers), answers
    passed = [a for a in answers if a.status == 302 and a.url.endswith("/staff/")]
    assert len(passed) == 1, [a.status for a in answers]
    assert all(a.status == 200 for a in answers if a not in passed)
    assert sum(c.get("/staff/").url.endswith("/staff/") for c in clients) == 1
    assert _sign_ins(session) == 1


def test_totp_step_is_consumed_by_one_guarded_statement(app, make, session):
    """Two transactions that both read the staff row before either used the code: one passes."""
    staff = make.staff("teacher")
    session.commit()
    code = pyotp.TOTP(TOTP_SECRET).now()
    first, second = Session(db.engine), Session(db.engine)
    try:
        a = first.get(Staff, staff.id)
        b = second.get(Staff, staff.id)
        assert a.totp_last_step is None and b.totp_last_step is None  # both read "never used"
        assert auth.staff_check_totp(first, a, code).ok
        first.commit()
        assert not auth.staff_check_totp(second, b, code).ok  # its stale copy says unused; the UPDATE says no
        second.commit()
    finally:
        first.close()
        second.close()


def test_parallel_guesses_are_not_all_checked(live_server, make, session):
    """Eight simultaneous PIN guesses for one child: only the one that won the account is checked."""
    child = make.child(grade=4, pin="482913")
    session.commit()
    clients = [LiveClient(live_server) for _ in range(8)]
    tokens = [c.token("/student/signin") for c in clients]
    answers = fire_together([
        (lambda c=c, t=t, i=i: c.post("/student/signin", {"student_no": child.student_no, "pin": f"{i:06d}"}, token=t))
        for i, (c, t) in enumerate(zip(clients, tokens, strict=True))
    ])
    assert all(isinstance(a, Answer) and a.status == 200 for a in answers), answers
    session.expire_all()
    assert session.get(Child, child.id).failed_logins == 1


def test_a_revoked_card_leaves_no_one_signed_in_under_parallel_use(live_server, app, make, session):
    """Card sign-ins racing the teacher's revocation: afterwards nobody holds a session from that card."""
    teacher, cls = make.teacher_with_class(3)
    child = make.child(cls)
    token = auth.issue_card_token(child, app.config["SECRET_KEY"])
    session.commit()
    teacher_client = LiveClient(live_server)
    tablets = [LiveClient(live_server) for _ in range(5)]
    _live_sign_in_staff(teacher_client, teacher)
    page_token = teacher_client.token(f"/staff/classes/{cls.id}/sign-in")
    tablet_tokens = [t.token("/student/card") for t in tablets]
    calls = [(lambda c=c, t=t: c.post("/student/card", {"t": token}, token=t)) for c, t in zip(tablets, tablet_tokens, strict=True)]
    calls.insert(2, lambda: teacher_client.post(f"/staff/classes/{cls.id}/children/{child.id}/revoke-card", {}, token=page_token))
    answers = fire_together(calls)
    assert all(isinstance(a, Answer) for a in answers), answers
    assert answers[2].status == 302
    # Whatever the order, no tablet is signed in as the child now, and the card is gone.
    assert not [t for t in tablets if t.get("/student/").url.endswith("/student/")]
    assert _card_refused(tablets[0], token)
    session.expire_all()
    assert session.get(Child, child.id).card_token_digest is None


def _card_refused(c: LiveClient, token: str) -> bool:
    r = c.post("/student/card", {"t": token}, token=c.token("/student/card"))
    return r.status == 200


def _live_sign_in_staff(c: LiveClient, staff) -> None:
    r = c.post_form("/staff/signin", {"email": staff.email, "password": PASSWORD})
    assert r.status == 302, r.status
    r = c.post_form("/staff/totp", {"code": pyotp.TOTP(TOTP_SECRET).now()})
    assert r.status == 302 and r.url.endswith("/staff/"), r.status
