"""Wrong guesses slow an attacker down and never lock the person out (issue 12, item 7).

After failures an account waits a delay that grows (1, 2, 4 ... seconds) and
is capped at 30 seconds; attempts before it are refused with the same answer
as a wrong one (no sleeping in the server). Unknown accounts, wrong secrets
and delayed accounts get one identical answer, so nobody learns which student
numbers or addresses exist. Time is a fake clock here: no test sleeps.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.orm import utcnow
from portal.people.models import Child, Staff
from tests.conftest import PASSWORD, TOTP_SECRET, csrf_token_from


class Clock:
    def __init__(self):
        self.now = utcnow()

    def __call__(self):
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr("portal.auth.service.utcnow", c)
    return c


def _client(app, address: str):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = address
    return c


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _try(c, url: str, data: dict, headers: dict | None = None):
    token = csrf_token_from(_html(c.get(url, headers=headers)))
    return c.post(url, data={"csrf_token": token, **data}, headers=headers)


def _answer(resp, *typed: str) -> tuple[int, str]:
    """What a visitor sees, without the parts that differ anyway (CSRF token, what they typed)."""
    body = re.sub(r'name="csrf_token"[^>]*value="[^"]*"', "csrf", _html(resp))
    body = re.sub(r'<meta name="csrf-token" content="[^"]*"', "csrf", body)
    for t in typed:
        body = body.replace(t, "TYPED")
    return resp.status_code, body


def test_wrong_pins_delay_but_never_lock_out_the_child(app, make, session, clock):
    child = make.child(grade=2, pin="482913")
    session.commit()
    c = app.test_client()
    waited = []
    for _ in range(25):  # far beyond the five failures that used to lock for 15 minutes
        r = _try(c, "/student/signin", {"student_no": child.student_no, "pin": "000000"})
        assert r.status_code == 200
        session.expire_all()
        delayed = session.get(Child, child.id)
        wait = (delayed.login_not_before - clock.now).total_seconds()
        assert 0 < wait <= 30
        waited.append(wait)
        clock.advance(wait)
    assert waited[:5] == [1, 2, 4, 8, 16] and max(waited) == 30  # grows, then stays at the cap
    # The child, after at most half a minute, signs in with the right PIN.
    r = _try(c, "/student/signin", {"student_no": child.student_no, "pin": "482913"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/student/")
    session.expire_all()
    assert session.get(Child, child.id).failed_logins == 0


def test_attempts_during_the_delay_are_refused_not_checked(app, make, session, clock):
    child = make.child(grade=2, pin="482913")
    session.commit()
    c = app.test_client()
    for _ in range(4):  # at 0 s, 0.5 s (refused: too soon), 1 s, 1.5 s (refused)
        _try(c, "/student/signin", {"student_no": child.student_no, "pin": "000000"})
        clock.advance(0.5)
    session.expire_all()
    assert session.get(Child, child.id).failed_logins == 2
    # Even the right PIN is refused (with the usual answer) until the delay has passed.
    r = _try(c, "/student/signin", {"student_no": child.student_no, "pin": "482913"})
    assert r.status_code == 200 and "ばんごうか ひみつの ばんごうが ちがうよ。" in _html(r)
    clock.advance(1)
    r = _try(c, "/student/signin", {"student_no": child.student_no, "pin": "482913"})
    assert r.status_code == 302


def _delay(app, url: str, wrong: dict, clock) -> None:
    """Six real wrong attempts, each after the previous delay: the account now waits."""
    for _ in range(6):
        _try(app.test_client(), url, wrong)
        clock.advance(30)
    _try(app.test_client(), url, wrong)


@pytest.mark.parametrize("kind", ["student", "guardian", "staff"])
def test_unknown_wrong_and_delayed_student_numbers_get_the_same_answer(app, make, session, clock, kind):
    """Unknown account, wrong secret, delayed account (even with the right secret): one answer."""
    if kind == "student":
        real, delayed = make.child(grade=2, pin="482913"), make.child(grade=2, pin="135790")
        url = "/student/signin"
        tries = {
            "unknown": ({"student_no": "P29999999", "pin": "482913"}, "P29999999"),
            "wrong": ({"student_no": real.student_no, "pin": "000000"}, real.student_no),
            "delayed": ({"student_no": delayed.student_no, "pin": "135790"}, delayed.student_no),
        }
        wrong = {"student_no": delayed.student_no, "pin": "000000"}
    elif kind == "guardian":
        real, delayed = make.guardian(make.child()), make.guardian(make.child())
        url = "/family/signin"
        tries = {
            "unknown": ({"email": "nobody@example.invalid", "password": PASSWORD}, "nobody@example.invalid"),
            "wrong": ({"email": real.email, "password": "not the password"}, real.email),
            "delayed": ({"email": delayed.email, "password": PASSWORD}, delayed.email),
        }
        wrong = {"email": delayed.email, "password": "not the password"}
    else:
        real, delayed = make.staff("teacher"), make.staff("school_lead")
        url = "/staff/signin"
        tries = {
            "unknown": ({"email": "nobody@example.invalid", "password": PASSWORD}, "nobody@example.invalid"),
            "wrong": ({"email": real.email, "password": "not the password"}, real.email),
            "delayed": ({"email": delayed.email, "password": PASSWORD}, delayed.email),
        }
        wrong = {"email": delayed.email, "password": "not the password"}
    session.commit()
    _delay(app, url, wrong, clock)
    answers = {}
    for name, (data, typed) in tries.items():
        answers[name] = _answer(_try(app.test_client(), url, data), typed)
    assert answers["unknown"][0] == 200
    assert answers["unknown"] == answers["wrong"] == answers["delayed"]
    # and nothing in it speaks of a lock
    assert "ロック" not in answers["delayed"][1] and "せんせいに きいてね" not in answers["delayed"][1]


def test_staff_totp_step_answers_the_same_for_wrong_and_delayed(app, make, session, clock):
    staff = make.staff("counsellor")
    session.commit()
    wrong = "000000" if pyotp.TOTP(TOTP_SECRET).now() != "000000" else "111111"
    c = app.test_client()
    assert _try(c, "/staff/signin", {"email": staff.email, "password": PASSWORD}).status_code == 302
    first = _answer(_try(c, "/staff/totp", {"code": wrong}), wrong)
    clock.advance(0.5)  # delayed now: the right code is refused with the same answer
    right = pyotp.TOTP(TOTP_SECRET).at(clock.now)
    second = _answer(_try(c, "/staff/totp", {"code": right}), right)
    assert first == second and first[0] == 200
    assert c.get("/staff/").status_code == 302


def test_staff_account_cannot_be_locked_from_many_addresses(app, make, session, clock, outbox):
    staff = make.staff("school_lead")
    session.commit()
    # Five addresses, each well within its own rate limit, guess 25 times in all.
    for i in range(25):
        attacker = _client(app, f"198.51.100.{i % 5 + 1}")
        r = _try(attacker, "/staff/signin", {"email": staff.email, "password": f"guess number {i}"})
        assert r.status_code == 200
        clock.advance(30)
    # The staff member, from the school, signs in at once after the last guess's delay.
    me = _client(app, "203.0.113.10")
    r = _try(me, "/staff/signin", {"email": staff.email, "password": PASSWORD})
    assert r.status_code == 302 and r.headers["Location"].endswith("/staff/totp")
    r = _try(me, "/staff/totp", {"code": pyotp.TOTP(TOTP_SECRET).at(clock.now)})
    assert r.status_code == 302 and r.headers["Location"].endswith("/staff/")
    assert me.get("/staff/").status_code == 200


def test_staff_is_told_once_by_email_when_their_account_is_being_guessed(app, make, session, clock, outbox):
    staff = make.staff("teacher", email="guessed.teacher@example.invalid")
    session.commit()
    outbox.clear()
    for i in range(30):  # one burst of guesses
        _try(_client(app, "198.51.100.3"), "/staff/signin", {"email": staff.email, "password": f"guess number {i}"})
        clock.advance(30)
    mine = [m for m in outbox if m["To"] == staff.email]
    assert len(mine) == 1, [m["Subject"] for m in outbox]
    body = mine[0].get_content()
    assert "見守り" in mine[0]["Subject"]
    assert "ロックされていません" in body  # the person is told they can still sign in
    for secret in ("guess number", "198.51.100"):
        assert secret not in body
    # After the owner signs in, a new burst is told again (once).
    c = app.test_client()
    _try(c, "/staff/signin", {"email": staff.email, "password": PASSWORD})
    _try(c, "/staff/totp", {"code": pyotp.TOTP(TOTP_SECRET).at(clock.now)})
    for i in range(6):
        _try(app.test_client(), "/staff/signin", {"email": staff.email, "password": f"again {i}"})
        clock.advance(30)
    assert len([m for m in outbox if m["To"] == staff.email]) == 2


def test_failed_sign_ins_are_limited_per_address_across_every_form(app, make, session, clock, monkeypatch):
    from portal.extensions import limiter

    monkeypatch.setitem(app.config, "LOGIN_FAILURE_RATE_LIMIT", "4 per hour")
    limiter.reset()
    child = make.child(grade=2, pin="482913")
    staff = make.staff("teacher")
    session.commit()
    c = _client(app, "198.51.100.7")
    codes = [
        _try(c, "/student/signin", {"student_no": child.student_no, "pin": "000000"}).status_code,
        _try(c, "/family/signin", {"email": "x@example.invalid", "password": "nope nope"}).status_code,
        _try(c, "/staff/signin", {"email": staff.email, "password": "nope nope"}).status_code,
        _try(c, "/student/signin", {"student_no": "P29999999", "pin": "000000"}).status_code,
        _try(c, "/family/signin", {"email": "y@example.invalid", "password": "nope nope"}).status_code,
    ]
    assert codes == [200, 200, 200, 200, 429]
    # Another address (a child at school) is not affected, and successes are never counted.
    school = _client(app, "203.0.113.20")
    clock.advance(30)
    for _ in range(6):
        r = _try(school, "/student/signin", {"student_no": child.student_no, "pin": "482913"})
        assert r.status_code == 302
        school.post("/signout", data={"csrf_token": csrf_token_from(_html(school.get("/student/")))})
    limiter.reset()


def test_teacher_clears_a_pupils_delay(app, make, session, clock, login):
    teacher, cls = make.teacher_with_class(2)
    child = make.child(cls, pin="482913", name="待機 花子")
    other = make.child(cls, pin="135790", name="普通 太郎")
    session.commit()
    kid = app.test_client()
    for _ in range(6):
        _try(kid, "/student/signin", {"student_no": child.student_no, "pin": "000000"})
        session.expire_all()
        clock.advance((session.get(Child, child.id).login_not_before - clock.now).total_seconds())
    _try(kid, "/student/signin", {"student_no": child.student_no, "pin": "000000"})  # now delayed 30 s

    t = login(teacher)
    page = _html(t.get(f"/staff/classes/{cls.id}/sign-in"))
    row = page.split("待機 花子", 1)[1].split("</tr>", 1)[0]
    assert "次の試行まで待機中" in row
    assert f"/staff/classes/{cls.id}/children/{child.id}/clear-delay" in page
    assert f"/children/{other.id}/clear-delay" not in page  # only for a child who has failures

    # Without the CSRF token nothing happens.
    assert t.post(f"/staff/classes/{cls.id}/children/{child.id}/clear-delay").status_code == 400
    session.expire_all()
    assert auth.is_delayed(session.get(Child, child.id), clock.now)

    token = csrf_token_from(page)
    r = t.post(f"/staff/classes/{cls.id}/children/{child.id}/clear-delay", data={"csrf_token": token})
    assert r.status_code == 302
    # At once (no time passes), the child signs in.
    r = _try(kid, "/student/signin", {"student_no": child.student_no, "pin": "482913"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/student/")
    ev = session.scalar(select(AuditEvent).where(AuditEvent.action == "people.sign_in_delay_cleared"))
    assert ev is not None and ev.child_id == child.id and ev.actor_id == teacher.id
    assert ev.detail == {"class_id": cls.id}


@pytest.mark.parametrize("kind", ["student", "staff"])
def test_a_strangers_guesses_never_keep_the_person_out_on_their_own_device(app, make, session, clock, kind):
    """Guessing at the pace of the delay holds it closed for strangers, not for a browser the person used."""
    if kind == "student":
        who = make.child(grade=3, pin="482913")
        url, right, wrong = "/student/signin", {"student_no": who.student_no, "pin": "482913"}, {"student_no": who.student_no, "pin": "000000"}
        home = "/student/"
    else:
        who = make.staff("teacher")
        url, right, wrong = "/staff/signin", {"email": who.email, "password": PASSWORD}, {"email": who.email, "password": "not it at all"}
        home = "/staff/totp"
    session.commit()
    mine = app.test_client()  # the school's tablet, or the teacher's own PC
    r = _try(mine, url, right)
    assert r.status_code == 302 and r.headers["Location"].endswith(home)
    if kind == "staff":
        assert _try(mine, "/staff/totp", {"code": pyotp.TOTP(TOTP_SECRET).at(clock.now)}).status_code == 302
    page = "/student/" if kind == "student" else "/staff/"
    assert mine.post("/signout", data={"csrf_token": csrf_token_from(_html(mine.get(page)))}).status_code == 302
    clock.advance(60)

    stranger = _client(app, "198.51.100.99")
    for _ in range(12):  # always guessing again the moment the delay ends
        _try(stranger, url, wrong)
        session.expire_all()
        obj = session.get(Child if kind == "student" else Staff, who.id)
        assert auth.is_delayed(obj, clock.now)
        clock.advance((obj.login_not_before - clock.now).total_seconds() - 1)  # and the person tries just now
    # At this moment any other browser is refused, even with the right secret: the delay holds for strangers...
    assert _try(app.test_client(), url, right).status_code == 200
    # ...and the person's own device signs in.
    r = _try(mine, url, right)
    assert r.status_code == 302 and r.headers["Location"].endswith(home)


def test_wrong_pins_on_a_known_tablet_are_delayed_too(app, make, session, clock):
    child = make.child(grade=3, pin="482913")
    session.commit()
    tablet = app.test_client()
    assert _try(tablet, "/student/signin", {"student_no": child.student_no, "pin": "482913"}).status_code == 302
    tablet.post("/signout", data={"csrf_token": csrf_token_from(_html(tablet.get("/student/")))})
    # A classmate on the same tablet guesses: the known tablet's own delay applies.
    _try(tablet, "/student/signin", {"student_no": child.student_no, "pin": "000000"})
    assert _try(tablet, "/student/signin", {"student_no": child.student_no, "pin": "482913"}).status_code == 200
    clock.advance(1)
    assert _try(tablet, "/student/signin", {"student_no": child.student_no, "pin": "482913"}).status_code == 302


def test_guessing_the_current_password_on_a_staff_session_is_limited(app, make, session, login, monkeypatch):
    """An unattended signed-in PC is no oracle for the password: wrong 'current password' tries count per address."""
    from portal.extensions import limiter

    monkeypatch.setitem(app.config, "LOGIN_FAILURE_RATE_LIMIT", "3 per hour")
    limiter.reset()
    staff = make.staff("teacher")
    session.commit()
    c = login(staff)
    codes = []
    for i in range(4):
        token = csrf_token_from(_html(c.get("/staff/account/password")))
        codes.append(c.post("/staff/account/password", data={
            "csrf_token": token, "current": f"guess {i} guess", "password": "a new long password", "password_again": "a new long password",
        }).status_code)
    assert codes == [200, 200, 200, 429]
    limiter.reset()
