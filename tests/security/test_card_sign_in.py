"""The QR sign-in card (issue 12, item 6).

The card's URL carries its token in the fragment, which no browser sends to a
server; a same-origin script posts it and replaces the address, so the token
is in no URL the tablet keeps after sign-in; the server never signs in on a
GET. A card is refused while wrong PINs delay the child, a teacher can revoke
one child's card, and the class view shows when each card was last used.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.orm import utcnow
from portal.people.models import Child
from tests.conftest import csrf_token_from


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _card(c, token: str):
    page = _html(c.get("/student/card"))
    return c.post("/student/card", data={"csrf_token": csrf_token_from(page), "t": token})


def test_a_get_never_signs_in_and_never_shows_the_token(app, make, session):
    child = make.child(grade=1)
    token = auth.issue_card_token(child, app.config["SECRET_KEY"])
    session.commit()
    c = app.test_client()
    # An old card's URL (token in the query string), from a tablet's history:
    r = c.get(f"/student/card?t={token}")
    assert r.status_code == 303 and r.headers["Location"] == "/student/card"  # the address is cleaned
    page = c.get("/student/card")
    assert token not in _html(page) and page.headers["Cache-Control"] == "no-store"
    assert c.get("/student/").status_code == 302  # not signed in
    # The page reads the fragment only through a same-origin script (the CSP allows no inline one).
    assert '<script src="/auth/static/card.js"></script>' in _html(page)
    js = c.get("/auth/static/card.js")
    assert js.status_code == 200 and "replaceState" in js.get_data(as_text=True)
    js.close()


def test_card_refused_while_student_is_delayed(app, make, session, monkeypatch):
    now = [utcnow()]
    monkeypatch.setattr("portal.auth.service.utcnow", lambda: now[0])
    child = make.child(grade=2, pin="482913")
    token = auth.issue_card_token(child, app.config["SECRET_KEY"])
    session.commit()
    guesser = app.test_client()
    for _ in range(5):  # someone guesses the child's PIN (this used to lock the PIN, not the card)
        page = _html(guesser.get("/student/signin"))
        guesser.post("/student/signin", data={"csrf_token": csrf_token_from(page), "student_no": child.student_no, "pin": "000000"})
        session.expire_all()
        now[0] = session.get(Child, child.id).login_not_before
    now[0] -= timedelta(seconds=1)  # still within the last delay
    tablet = app.test_client()
    r = _card(tablet, token)
    assert r.status_code == 200 and "この カードは いま つかえないよ。" in _html(r)
    assert tablet.get("/student/").status_code == 302
    session.expire_all()
    assert session.get(Child, child.id).card_last_used_at is None
    now[0] += timedelta(seconds=1)  # the delay has passed
    r = _card(tablet, token)
    assert r.status_code == 303 and r.headers["Location"].endswith("/student/")
    assert tablet.get("/student/").status_code == 200


def test_teacher_revokes_one_childs_card(app, make, session, login):
    key = app.config["SECRET_KEY"]
    teacher, cls = make.teacher_with_class(2)
    lost = make.child(cls, name="紛失 花子", pin="482913")
    kept = make.child(cls, name="保持 太郎")
    lost_card, kept_card = auth.issue_card_token(lost, key), auth.issue_card_token(kept, key)
    session.commit()
    # The child is signed in on a tablet with the card that is then lost.
    tablet = app.test_client()
    assert _card(tablet, lost_card).status_code == 303
    assert tablet.get("/student/").status_code == 200

    t = login(teacher)
    page = _html(t.get(f"/staff/classes/{cls.id}/sign-in"))
    url = f"/staff/classes/{cls.id}/children/{lost.id}/revoke-card"
    assert url in page
    assert t.post(url).status_code == 400  # no CSRF token: refused, nothing changed
    session.expire_all()
    assert session.get(Child, lost.id).card_token_digest is not None
    r = t.post(url, data={"csrf_token": csrf_token_from(page)})
    assert r.status_code == 302

    # The lost card stops working, and the session it opened ends; the PIN still works.
    assert tablet.get("/student/").status_code == 302
    r = _card(app.test_client(), lost_card)
    assert r.status_code == 200 and "この カードは いま つかえないよ。" in _html(r)
    pin = app.test_client()
    page = _html(pin.get("/student/signin"))
    r = pin.post("/student/signin", data={"csrf_token": csrf_token_from(page), "student_no": lost.student_no, "pin": "482913"})
    assert r.status_code == 302
    # The other child's card is untouched.
    assert _card(app.test_client(), kept_card).status_code == 303

    ev = session.scalar(select(AuditEvent).where(AuditEvent.action == "people.card_revoked"))
    assert ev is not None and ev.child_id == lost.id and ev.actor_id == teacher.id and ev.detail == {"class_id": cls.id}
    page = _html(t.get(f"/staff/classes/{cls.id}/sign-in"))
    assert "無効化" in page.split("紛失 花子", 1)[1].split("</tr>", 1)[0]
    assert url not in page  # nothing left to revoke


def test_class_view_shows_when_each_card_was_last_used(app, make, session, login, monkeypatch):
    used_at = utcnow().replace(year=2026, month=11, day=4, hour=23, minute=5, second=0, microsecond=0)  # 08:05 in Tokyo
    monkeypatch.setattr("portal.auth.service.utcnow", lambda: used_at)
    teacher, cls = make.teacher_with_class(2)
    used = make.child(cls, name="利用 花子")
    unused = make.child(cls, name="未使用 太郎")
    token = auth.issue_card_token(used, app.config["SECRET_KEY"])
    auth.issue_card_token(unused, app.config["SECRET_KEY"])
    session.commit()
    assert _card(app.test_client(), token).status_code == 303
    page = _html(login(teacher).get(f"/staff/classes/{cls.id}/sign-in"))
    used_row = page.split("利用 花子", 1)[1].split("</tr>", 1)[0]
    unused_row = page.split("未使用 太郎", 1)[1].split("</tr>", 1)[0]
    assert "2026/11/05 8:05" in used_row or "2026/11/05 08:05" in used_row, used_row
    assert "まだ使われていません" in unused_row
    # The read of the class's children is audited, ids only.
    reads = session.scalars(select(AuditEvent).where(AuditEvent.action == "child.read")).all()
    assert {e.child_id for e in reads} >= {used.id, unused.id}


@pytest.mark.browser
def test_card_token_never_in_a_url_after_sign_in(browser_page, app, make, session, live_server):
    child = make.child(grade=1, name="カード 花子")
    token = auth.issue_card_token(child, app.config["SECRET_KEY"])
    session.commit()
    page = browser_page
    seen = []  # every URL and Referer the browser sent to the server
    page.on("request", lambda req: seen.append(req.url + " " + (req.headers.get("referer") or "")))

    page.goto("/")
    page.goto(f"/student/card#t={token}")  # what the QR code holds
    page.wait_for_function("() => !window.location.hash")
    assert token not in page.url
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/student/")
    assert "カード 花子" in page.content() or "花子" in page.content()

    # Back and forward, as the next child on the shared tablet would: no address holds the token.
    history = page.evaluate("() => history.length")
    page.go_back()
    assert token not in page.url
    assert page.evaluate("() => document.getElementById('card-token') ? document.getElementById('card-token').value : ''") == ""
    page.go_back()
    assert token not in page.url
    assert history >= 2
    assert not [s for s in seen if token in s], "the token reached the server in a URL or a Referer"

    # Signed out, the card page from history has no token to send: it does not sign in again.
    page.goto("/student/")
    page.locator("form[action='/signout'] button").click()
    page.goto("/student/card")
    assert page.locator("#card-form").is_hidden()
    page.goto("/student/")
    assert "/signin" in page.url
