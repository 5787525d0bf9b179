"""Sign-in security properties, each test named after the property it checks."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select, update

from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.extensions import limiter
from portal.orm import utcnow
from portal.people.models import Child, EnrolmentCode, Guardian, GuardianChild, Staff
from tests.conftest import PASSWORD, TOTP_SECRET, csrf_token_from

COOKIE = "mimamori_session"


def _cookie(client) -> str | None:
    c = client.get_cookie(COOKIE)
    return c.value if c else None


def _guardian_sign_in(post_form, email: str, password: str = PASSWORD, c=None):
    return post_form("/family/signin", {"email": email, "password": password}, c=c)


def _staff_sign_in(client, post_form, email: str, code: str | None = None, password: str = PASSWORD):
    r = post_form("/staff/signin", {"email": email, "password": password}, c=client)
    if r.status_code != 302 or "/staff/totp" not in r.headers["Location"]:
        return r
    return post_form("/staff/totp", {"code": code or pyotp.TOTP(TOTP_SECRET).now()}, c=client)


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _wait_out_delays(session) -> None:
    """As if the person waited: the short delay after a failure has passed (tests/security/test_sign_in_throttling.py)."""
    for model in (Staff, Guardian, Child):
        session.execute(update(model).values(login_not_before=None))
    session.commit()


# -- sessions -------------------------------------------------------------------


def test_session_id_changes_at_login(app, client, make, post_form, session):
    guardian = make.guardian(make.child())
    session.commit()

    client.get("/family/signin")
    before = _cookie(client)
    assert before  # the CSRF token lives in the session
    r = _guardian_sign_in(post_form, guardian.email)
    assert r.status_code == 302 and r.headers["Location"].endswith("/family/")
    signed_in = _cookie(client)
    assert signed_in and signed_in != before

    # The pre-login cookie, replayed in another browser, is still anonymous.
    attacker = app.test_client()
    attacker.set_cookie(COOKIE, before)
    assert attacker.get("/family/").status_code == 302

    # Sign out: the signed-in cookie, replayed, no longer authenticates.
    token = csrf_token_from(_html(client.get("/family/")))
    assert client.post("/signout", data={"csrf_token": token}).status_code == 302
    replay = app.test_client()
    replay.set_cookie(COOKIE, signed_in)
    r = replay.get("/family/")
    assert r.status_code == 302 and "/signin" in r.headers["Location"]

    # Signing in again gives yet another session, and the old one stays dead.
    _guardian_sign_in(post_form, guardian.email)
    again = _cookie(client)
    assert again not in (before, signed_in)
    assert client.get("/family/").status_code == 200
    assert replay.get("/family/").status_code == 302


@pytest.mark.parametrize("kind", ["staff", "student"])
def test_session_id_changes_at_login_for_staff_and_students(app, client, make, post_form, session, kind):
    if kind == "staff":
        who = make.staff("teacher")
        page = "/staff/signin"
    else:
        who = make.child(grade=2, pin="482913")
        page = "/student/signin"
    session.commit()
    client.get(page)
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"  # fixation: anything put in before sign-in must not survive it
    before = _cookie(client)
    if kind == "staff":
        r = post_form(page, {"email": who.email, "password": PASSWORD})
        pending = _cookie(client)
        assert pending != before
        r = post_form("/staff/totp", {"code": pyotp.TOTP(TOTP_SECRET).now()})
        home = "/staff/"
    else:
        r = post_form(page, {"student_no": who.student_no, "pin": "482913"})
        pending = None
        home = "/student/"
    assert r.status_code == 302 and r.headers["Location"].endswith(home)
    after = _cookie(client)
    assert after not in (before, pending)
    with client.session_transaction() as sess:
        assert "planted" not in sess and "pending_staff" not in sess
    assert client.get(home).status_code == 200

    # The pre-login cookie (and the half-way one of the staff password step) stay anonymous.
    for old in filter(None, (before, pending)):
        replay = app.test_client()
        replay.set_cookie(COOKIE, old)
        r = replay.get(home)
        assert r.status_code == 302 and "/signin" in r.headers["Location"]


def test_tampered_session_cookie_is_anonymous(app, client, make, post_form, session):
    guardian = make.guardian(make.child())
    session.commit()
    _guardian_sign_in(post_form, guardian.email)
    value = _cookie(client)
    assert client.get("/family/").status_code == 200

    # Flip one character of the payload: the signature no longer matches.
    mid = len(value) // 2
    flipped = value[:mid] + ("A" if value[mid] != "A" else "B") + value[mid + 1 :]
    for bad in (flipped, value[:-2] + "xx", "not-a-session", ""):
        other = app.test_client()
        other.set_cookie(COOKIE, bad)
        r = other.get("/family/")
        assert r.status_code == 302 and "/signin" in r.headers["Location"], bad
        page = other.get(r.headers["Location"])
        assert page.status_code == 200
        assert "続けるにはサインインしてください。" in _html(page)


def test_staff_idle_timeout_signs_out(app, client, make, login, session):
    staff = make.staff("teacher")
    guardian = make.guardian(make.child())
    session.commit()
    login(staff)
    assert client.get("/staff/").status_code == 200

    idle = app.config["STAFF_IDLE_TIMEOUT"].total_seconds()
    with client.session_transaction() as sess:
        sess["last_seen"] = time.time() - idle - 5
    r = client.get("/staff/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/signin")
    page = client.get("/signin")
    assert "一定時間操作がなかったため、サインアウトしました。" in _html(page)
    assert client.get("/staff/").status_code == 302  # really signed out

    # Families keep the longer timeout: the same idle time does not sign them out.
    family = app.test_client()
    login(guardian, family)
    with family.session_transaction() as sess:
        sess["last_seen"] = time.time() - idle - 5
    assert family.get("/family/").status_code == 200


def test_student_idle_timeout_is_short_on_shared_tablets(app, client, make, session, login):
    child = make.child(grade=2)
    session.commit()
    login(child)
    assert client.get("/student/").status_code == 200
    idle = app.config["STUDENT_IDLE_TIMEOUT"].total_seconds()
    assert idle < app.config["FAMILY_IDLE_TIMEOUT"].total_seconds()
    with client.session_transaction() as sess:
        sess["last_seen"] = time.time() - idle + 30
    assert client.get("/student/").status_code == 200  # still within the limit
    with client.session_transaction() as sess:
        sess["last_seen"] = time.time() - idle - 5
    r = client.get("/student/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/signin")


def test_sign_in_page_keeps_the_page_asked_for(make, session, client, post_form):
    child = make.child()
    guardian = make.guardian(child)
    session.commit()
    r = client.get(f"/family/children/{child.id}")
    assert r.status_code == 302
    chooser = client.get(r.headers["Location"])
    link = re.search(r'href="(/family/signin[^"]*)"', chooser.get_data(as_text=True)).group(1).replace("&amp;", "&")
    assert "next=" in link
    r = post_form(link, {"email": guardian.email, "password": PASSWORD})
    assert r.headers["Location"] == f"/family/children/{child.id}"


# -- staff ----------------------------------------------------------------------


def test_login_is_rate_limited(app, client, make, post_form, session, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3 per minute")
    limiter.reset()
    guardian = make.guardian(make.child())
    session.commit()
    token = csrf_token_from(_html(client.get("/family/signin")))
    codes = [
        client.post("/family/signin", data={"csrf_token": token, "email": guardian.email, "password": "nope nope nope"}).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    r = client.post("/family/signin", data={"csrf_token": token, "email": guardian.email, "password": PASSWORD})
    assert r.status_code == 429
    html = _html(r)
    assert '<html lang="ja">' in html
    assert "試行回数が多すぎます" in html and "1分ほど待ってから" in html
    # Reading the page is never limited.
    assert client.get("/family/signin").status_code == 200
    limiter.reset()


def test_totp_code_cannot_be_replayed(app, make, post_form, session):
    staff = make.staff("teacher")
    session.commit()
    code = pyotp.TOTP(TOTP_SECRET).now()

    first = app.test_client()
    r = _staff_sign_in(first, post_form, staff.email, code)
    assert r.status_code == 302 and r.headers["Location"].endswith("/staff/")

    # The same code, seen over a shoulder, does not open a second session.
    second = app.test_client()
    r = _staff_sign_in(second, post_form, staff.email, code)
    assert r.status_code == 200
    assert "入力された内容が正しくないか" in _html(r)
    assert second.get("/staff/").status_code == 302

    # The service refuses it too, and refuses a code from an earlier step.
    _wait_out_delays(session)
    session.expire_all()
    staff = session.get(Staff, staff.id)
    assert not auth.staff_check_totp(session, staff, code).ok
    _wait_out_delays(session)
    staff = session.get(Staff, staff.id)
    earlier = pyotp.TOTP(TOTP_SECRET).at(utcnow() - timedelta(seconds=60))
    assert not auth.staff_check_totp(session, staff, earlier).ok
    session.rollback()


def test_staff_without_totp_must_enrol(app, client, make, post_form, session):
    staff = make.staff("counsellor", totp_secret=None)
    session.commit()
    r = post_form("/staff/signin", {"email": staff.email, "password": PASSWORD})
    assert r.status_code == 302 and r.headers["Location"].endswith("/staff/totp/setup")
    # The password alone is not a session.
    assert client.get("/staff/").status_code == 302

    page = client.get("/staff/totp/setup")
    assert page.status_code == 200
    with client.session_transaction() as sess:
        secret = sess["totp_setup_secret"]
    assert secret in _html(page)  # shown for entering by hand

    r = post_form("/staff/totp/setup", {"code": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"})
    assert r.status_code == 200 and "入力された内容が正しくないか" in _html(r)
    session.expire_all()
    assert session.get(Staff, staff.id).totp_secret_enc is None
    _wait_out_delays(session)

    r = post_form("/staff/totp/setup", {"code": pyotp.TOTP(secret).now()})
    assert r.status_code == 302 and r.headers["Location"].endswith("/staff/")
    assert client.get("/staff/").status_code == 200
    session.expire_all()
    enrolled = session.get(Staff, staff.id)
    assert auth.totp_secret(enrolled) == secret
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "auth.totp_enrolled")) == 1

    # From now on the ordinary TOTP step is asked for, never the set-up page again.
    other = app.test_client()
    r = post_form("/staff/signin", {"email": staff.email, "password": PASSWORD}, c=other)
    assert r.headers["Location"].endswith("/staff/totp")
    assert other.get("/staff/totp/setup").status_code == 302


# -- forms and codes --------------------------------------------------------------


def _registration(code: str, email: str = "new@example.invalid") -> dict:
    return {
        "code": code,
        "name": "登録 花子",
        "relationship": "mother",
        "email": email,
        "password": PASSWORD,
        "password_again": PASSWORD,
    }


def _counts(session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(Guardian)),
        session.scalar(select(func.count()).select_from(GuardianChild)),
        session.scalar(select(func.count()).select_from(EnrolmentCode).where(EnrolmentCode.used_at.is_not(None))),
    )


def test_form_without_csrf_token_is_refused_and_changes_nothing(app, client, make, session):
    child = make.child()
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], child)
    session.commit()
    before = _counts(session)
    client.get("/family/register")  # a session exists, but the form lacks its token
    for data in (_registration(code), {**_registration(code), "csrf_token": "forged"}):
        r = client.post("/family/register", data=data)
        assert r.status_code == 400
        html = _html(r)
        assert "フォームの有効期限が切れました" in html
        assert "前のページに戻り、再読み込みしてから" in html
    session.expire_all()
    assert _counts(session) == before
    assert auth.find_usable_code(session, app.config["SECRET_KEY"], code) is not None

    # Signing out without a token does not sign out either.
    guardian = make.guardian(child)
    session.commit()
    from tests.conftest import sign_in_as

    sign_in_as(client, guardian)
    assert client.post("/signout").status_code == 400
    assert client.get("/family/").status_code == 200


def test_form_without_csrf_token_gets_a_clear_page_in_english(app, client, make, session):
    guardian = make.guardian(make.child(), locale="en")
    session.commit()
    from tests.conftest import sign_in_as

    sign_in_as(client, guardian)
    before = session.get(Guardian, guardian.id).locale
    r = client.post("/language", data={"locale": "ja"})  # no token
    assert r.status_code == 400
    html = _html(r)
    assert '<html lang="en">' in html
    assert "The form has expired" in html
    session.expire_all()
    assert session.get(Guardian, guardian.id).locale == before == "en"


CODE_MESSAGE = "このコードは使えません。お知らせと見比べて確認するか、学校に新しいコードをご依頼ください。"


@pytest.mark.parametrize("case", ["wrong", "expired", "reused"])
def test_enrolment_code_wrong_expired_reused_give_the_same_message_and_change_nothing(app, client, make, session, post_form, case):
    key = app.config["SECRET_KEY"]
    child = make.child()
    if case == "wrong":
        auth.issue_enrolment_code(session, key, child)
        code = "ABCD-EFGH-JKLM"
    elif case == "expired":
        code = auth.issue_enrolment_code(session, key, child, now=utcnow() - timedelta(days=61))
    else:
        code = auth.issue_enrolment_code(session, key, child)
        first = auth.register_guardian(session, key, code, name="先 花子", email="first@example.invalid",
                                       password=PASSWORD, locale="ja")
        assert first is not None
    session.commit()
    before = _counts(session)

    r = post_form("/family/register", _registration(code))
    assert r.status_code == 200
    html = _html(r)
    assert CODE_MESSAGE in html
    assert html.count('class="error"') == 1
    session.expire_all()
    assert _counts(session) == before
    assert session.scalar(select(Guardian).where(Guardian.email == "new@example.invalid")) is None
    assert client.get("/family/").status_code == 302  # not signed in

    # Adding a child to an existing account with the same code: the same answer.
    other_child = make.child()
    guardian = make.guardian(other_child)
    session.commit()
    from tests.conftest import sign_in_as

    sign_in_as(client, guardian)
    before = _counts(session)
    r = post_form("/family/add-child", {"code": code})
    assert r.status_code == 200 and CODE_MESSAGE in _html(r)
    session.expire_all()
    assert _counts(session) == before


def test_enrolment_code_registers_once_and_is_typed_forgivingly(app, client, make, session, post_form, outbox):
    child = make.child(name="見守 一花")
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], child)
    session.commit()
    # Lower case, spaces and full-width characters from a Japanese keyboard all work.
    typed = code.lower().replace("-", " ").replace("a", "ａ")
    r = post_form("/family/register", _registration(typed))
    assert r.status_code == 302 and r.headers["Location"].endswith("/family/register/sent")
    # The address is proven before the account shows the child: the e-mailed link, then sign in.
    link = re.search(r"https?://\S+(/family/confirm/\S+)", outbox[-1].get_content()).group(1)
    assert post_form(link, {}).headers["Location"].endswith("/family/signin")
    _guardian_sign_in(post_form, "new@example.invalid")
    home = client.get("/family/")
    assert "見守 一花" in _html(home)
    session.expire_all()
    g = session.scalar(select(Guardian).where(Guardian.email == "new@example.invalid"))
    assert [link.child_id for link in g.child_links] == [child.id]


def test_wrong_pin(app, client, make, session, post_form):
    child = make.child(grade=2, pin="482913")
    en_child = make.child(grade=2, pin="135790", locale="en")
    session.commit()
    r = post_form("/student/signin", {"student_no": child.student_no, "pin": "111111"})
    assert r.status_code == 200
    assert "ばんごうか ひみつの ばんごうが ちがうよ。" in _html(r)
    assert client.get("/student/").status_code == 302
    # An unknown number gets exactly the same answer.
    r2 = post_form("/student/signin", {"student_no": "X99999999", "pin": "111111"})
    assert "ばんごうか ひみつの ばんごうが ちがうよ。" in _html(r2)
    # The right PIN, a moment later, works: wrong PINs delay, never lock
    # (tests/security/test_sign_in_throttling.py).
    _wait_out_delays(session)
    r = post_form("/student/signin", {"student_no": child.student_no, "pin": "482913"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/student/")

    # In English, for a child who chose English on this tablet.
    en = app.test_client()
    token = csrf_token_from(_html(en.get("/")))
    en.post("/language", data={"csrf_token": token, "locale": "en"})
    r = post_form("/student/signin", {"student_no": en_child.student_no, "pin": "000000"}, c=en)
    assert "The number or the PIN is not right, or you tried too fast. Wait a little and try again." in _html(r)
    _wait_out_delays(session)
    r = post_form("/student/signin", {"student_no": en_child.student_no, "pin": "135790"}, c=en)
    assert r.status_code == 302 and r.headers["Location"].endswith("/student/")


def test_student_signs_in_with_the_qr_card_and_an_old_card_stops_working(app, client, make, session, post_form):
    key = app.config["SECRET_KEY"]
    child = make.child(grade=1)
    old_card = auth.issue_card_token(child, key)
    new_card = auth.issue_card_token(child, key)  # the school printed a new sheet
    session.commit()

    # The card's QR code opens a page with one big button for a seven-year-old;
    # the token is in the fragment (never sent), and card.js posts it.
    page = client.get("/student/card")
    assert page.status_code == 200 and new_card not in _html(page)
    r = post_form("/student/card", {"t": new_card})
    assert r.status_code == 303 and r.headers["Location"].endswith("/student/")
    assert client.get("/student/").status_code == 200

    for bad in (old_card, "not-a-card", ""):
        other = app.test_client()
        r = post_form("/student/card", {"t": bad}, c=other)
        assert r.status_code == 200
        assert "この カードは いま つかえないよ。" in _html(r)
        assert other.get("/student/").status_code == 302


def test_a_guardian_account_holds_several_children(app, client, make, session, post_form):
    first, second = make.child(name="一番 花子"), make.child(name="二番 太郎")
    guardian = make.guardian(first)
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], second)
    session.commit()
    from tests.conftest import sign_in_as

    sign_in_as(client, guardian)
    r = post_form("/family/add-child", {"code": code}, follow_redirects=True)
    html = _html(r)
    assert "お子さんをアカウントに追加しました。" in html
    assert "一番 花子" in html and "二番 太郎" in html
    session.expire_all()
    assert sorted(link.child_id for link in session.get(Guardian, guardian.id).child_links) == sorted([first.id, second.id])
    assert client.get(f"/family/children/{second.id}").status_code == 200
    # The code is spent: a second try adds nothing.
    r = post_form("/family/add-child", {"code": code})
    assert CODE_MESSAGE in _html(r)


# -- password reset -----------------------------------------------------------


RESET_SENT = "そのアドレスのアカウントがある場合は、新しいパスワードを設定するためのリンクをお送りしました。"


def test_password_reset_by_email_token(app, client, make, session, post_form, outbox):
    guardian = make.guardian(make.child(), email="reset@example.invalid")
    session.commit()
    old_session = app.test_client()
    _guardian_sign_in(post_form, guardian.email, c=old_session)
    assert old_session.get("/family/").status_code == 200

    # An unknown address gets the same answer, and no mail goes anywhere.
    r = post_form("/family/password-reset", {"email": "nobody@example.invalid"}, follow_redirects=True)
    assert RESET_SENT in _html(r)
    assert outbox == []

    r = post_form("/family/password-reset", {"email": "Reset@Example.invalid "}, follow_redirects=True)
    assert RESET_SENT in _html(r)
    assert len(outbox) == 1
    msg = outbox[0]
    assert msg["To"] == "reset@example.invalid"
    body = msg.get_content()
    link = re.search(r"https?://\S+/family/password-reset/(\S+)", body)
    assert link, body
    url = "/family/password-reset/" + link.group(1)

    new_password = "a brand new secret"
    r = post_form(url, {"password": new_password, "password_again": new_password})
    assert r.status_code == 302 and r.headers["Location"].endswith("/family/signin")

    # The token is single use.
    r = client.get(url)
    assert r.status_code == 400
    assert "このリンクは使えません" in _html(r)
    # A forged token gets the same page.
    assert client.get("/family/password-reset/forged.token.value").status_code == 400

    # The new password works, the old one does not, and older sessions have ended.
    assert _guardian_sign_in(post_form, guardian.email, PASSWORD, c=app.test_client()).status_code == 200
    _wait_out_delays(session)
    assert _guardian_sign_in(post_form, guardian.email, new_password, c=app.test_client()).status_code == 302
    assert old_session.get("/family/").status_code == 302


# -- children and languages -------------------------------------------------------


def test_guardian_sees_only_own_children(app, client, make, session, login):
    mine = make.child(name="自分 一花")
    theirs = make.child(name="別家 二郎")
    guardian = make.guardian(mine)
    make.guardian(theirs)
    en_guardian = make.guardian(make.child(), locale="en")
    session.commit()

    login(guardian)
    assert "自分 一花" in _html(client.get(f"/family/children/{mine.id}"))
    home = _html(client.get("/family/"))
    assert "別家" not in home

    other = client.get(f"/family/children/{theirs.id}")
    missing = client.get("/family/children/999999")
    assert other.status_code == missing.status_code == 404
    assert "見つかりません" in _html(other) and "別家" not in _html(other)
    # The page for another family's child is the page for no child at all.
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", _html(other)) == strip.sub("", _html(missing))

    en = app.test_client()
    login(en_guardian, en)
    r = en.get(f"/family/children/{theirs.id}")
    assert r.status_code == 404
    assert '<html lang="en">' in _html(r) and "Not found" in _html(r)


def test_language_choice_saved_per_user(app, client, make, session, post_form):
    guardian = make.guardian(make.child())
    staff = make.staff("teacher")
    session.commit()

    # Before sign-in the choice is kept in the session and carried into the account.
    r = post_form("/language", {"locale": "en", "next": "/family/signin"}, page="/")
    assert r.headers["Location"].endswith("/family/signin")
    assert '<html lang="en">' in _html(client.get("/family/signin"))
    _guardian_sign_in(post_form, guardian.email)
    r = post_form("/language", {"locale": "en", "next": "/family/"}, page="/family/")
    session.expire_all()
    assert session.get(Guardian, guardian.id).locale == "en"

    # A new browser: Japanese until sign-in, then the saved English.
    fresh = app.test_client()
    assert '<html lang="ja">' in _html(fresh.get("/"))
    _guardian_sign_in(post_form, guardian.email, c=fresh)
    assert '<html lang="en">' in _html(fresh.get("/family/"))
    # Back to Japanese, saved the same way.
    post_form("/language", {"locale": "ja"}, page="/family/", c=fresh)
    session.expire_all()
    assert session.get(Guardian, guardian.id).locale == "ja"
    assert '<html lang="ja">' in _html(fresh.get("/family/"))

    # Staff: saved on the staff record, not shared with anyone else.
    staff_client = app.test_client()
    _staff_sign_in(staff_client, post_form, staff.email)
    post_form("/language", {"locale": "en"}, page="/staff/", c=staff_client)
    session.expire_all()
    assert session.get(Staff, staff.id).locale == "en"
    assert session.get(Guardian, guardian.id).locale == "ja"
    assert '<html lang="en">' in _html(staff_client.get("/staff/"))

    # An unknown language is refused without changing anything.
    post_form("/language", {"locale": "xx"}, page="/staff/", c=staff_client)
    session.expire_all()
    assert session.get(Staff, staff.id).locale == "en"


def test_registration_does_not_reveal_which_addresses_have_an_account(app, make, session, post_form, outbox):
    make.guardian(make.child(), email="known@example.invalid")
    child = make.child()
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], child)
    other_code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], make.child())
    session.commit()
    # Without a usable code, a known and an unknown address get the same page.
    known = _html(post_form("/family/register", _registration("ABCD-EFGH-JKLM", email="known@example.invalid")))
    unknown = _html(post_form("/family/register", _registration("ABCD-EFGH-JKLM", email="unknown@example.invalid")))
    assert CODE_MESSAGE in known and CODE_MESSAGE in unknown
    assert "すでに登録されています" not in known
    strip = re.compile(r'value="[^"]*"')
    assert strip.sub("", known) == strip.sub("", unknown)
    # With a real code too: the same "check your e-mail" answer, and the code is spent either way
    # (the holder of one letter cannot probe addresses with it). The owner of the address is told.
    r = post_form("/family/register", _registration(code, email="known@example.invalid"))
    r2 = post_form("/family/register", _registration(other_code, email="unknown@example.invalid"))
    assert r.headers["Location"] == r2.headers["Location"] and r.headers["Location"].endswith("/family/register/sent")
    assert auth.find_usable_code(session, app.config["SECRET_KEY"], code) is None
    assert auth.find_usable_code(session, app.config["SECRET_KEY"], other_code) is None
    assert sorted(m["To"] for m in outbox) == ["known@example.invalid", "unknown@example.invalid"]


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_sign_in_never_redirects_off_site(make, session, post_form, target):
    guardian = make.guardian(make.child())
    session.commit()
    r = post_form(f"/family/signin?next={target}", {"email": guardian.email, "password": PASSWORD})
    assert r.status_code == 302
    assert r.headers["Location"] == "/family/"


def test_sign_in_returns_to_the_page_asked_for(make, session, post_form, client):
    child = make.child()
    guardian = make.guardian(child)
    session.commit()
    r = client.get(f"/family/children/{child.id}")
    assert r.status_code == 302
    r = post_form(f"/family/signin?next=/family/children/{child.id}", {"email": guardian.email, "password": PASSWORD})
    assert r.headers["Location"] == f"/family/children/{child.id}"


def _post_sign_ins(c, n: int, forwarded_for: str) -> list[int]:
    headers = {"X-Forwarded-For": forwarded_for}
    token = csrf_token_from(_html(c.get("/family/signin", headers=headers)))
    data = {"csrf_token": token, "email": "nobody@example.invalid", "password": "nope nope nope"}
    return [c.post("/family/signin", data=data, headers=headers).status_code for _ in range(n)]


def test_rate_limit_cannot_be_dodged_with_forwarded_for(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "2 per minute")
    limiter.reset()
    # No proxy configured: X-Forwarded-For is the client's word, and ignored.
    assert _post_sign_ins(client, 2, "10.0.0.1") == [200, 200]
    assert _post_sign_ins(client, 1, "10.0.0.2") == [429]
    limiter.reset()


def test_rate_limit_is_per_family_behind_a_trusted_proxy(app):
    from portal import create_app

    proxied = create_app({**{k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "MAIL_BACKEND")},
                          "PROXY_FIX_HOPS": 1, "LOGIN_RATE_LIMIT": "2 per minute", "RATELIMIT_ENABLED": True})
    limiter.reset()
    c = proxied.test_client()
    assert _post_sign_ins(c, 3, "203.0.113.7") == [200, 200, 429]
    assert _post_sign_ins(c, 1, "198.51.100.9") == [200]  # another family behind the same proxy
    limiter.reset()
    from portal.extensions import db

    with proxied.app_context():
        db.engine.dispose()


def test_signed_in_pages_are_not_cached(make, session, login, client):
    guardian = make.guardian(make.child())
    session.commit()
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")
    login(guardian)
    assert client.get("/family/").headers["Cache-Control"] == "no-store"


def test_deactivated_staff_is_signed_out_at_once(app, make, session, login, client):
    staff = make.staff("teacher")
    session.commit()
    login(staff)
    assert client.get("/staff/").status_code == 200
    staff.active = False
    session.commit()
    assert client.get("/staff/").status_code == 302
