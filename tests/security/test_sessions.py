"""Sessions after a password changes, and the sign-in a person is shown on their home page."""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
from flask_babel import force_locale

from portal.auth import service as auth
from portal.i18n import local_datetime
from portal.people.models import Guardian, Staff
from tests.conftest import PASSWORD, TOTP_SECRET


def _html(resp) -> str:
    return resp.get_data(as_text=True)


def _staff_sign_in(post_form, c, email: str, password: str = PASSWORD):
    r = post_form("/staff/signin", {"email": email, "password": password}, c=c)
    assert r.status_code == 302, _html(r)[-500:]
    return post_form("/staff/totp", {"code": pyotp.TOTP(TOTP_SECRET).now()}, c=c)


def test_password_change_signs_out_other_sessions(app, make, session, login, post_form):
    staff = make.staff("teacher")
    session.commit()
    here, elsewhere = app.test_client(), app.test_client()
    login(staff, here)
    login(staff, elsewhere)
    assert elsewhere.get("/staff/").status_code == 200

    new = "a different long password"
    r = post_form("/staff/account/password", {"current": PASSWORD, "password": new, "password_again": new}, c=here)
    assert r.status_code == 302 and r.headers["Location"].endswith("/staff/")
    # The session that changed it carries on; every other one has ended.
    assert here.get("/staff/").status_code == 200
    r = elsewhere.get("/staff/")
    assert r.status_code == 302 and "/signin" in r.headers["Location"]


def test_password_reset_by_the_administrator_signs_out_every_session(app, make, session, login, post_form):
    admin = make.staff("administrator")
    staff = make.staff("teacher")
    session.commit()
    theirs = app.test_client()
    login(staff, theirs)
    assert theirs.get("/staff/").status_code == 200
    admin_client = app.test_client()
    login(admin, admin_client)
    r = post_form(f"/staff/admin/staff/{staff.id}/password", {}, page=f"/staff/admin/staff/{staff.id}", c=admin_client)
    assert r.status_code == 200
    assert theirs.get("/staff/").status_code == 302


def test_guardian_password_reset_signs_out_every_session(app, make, session, login, post_form):
    guardian = make.guardian(make.child())
    token = auth.issue_email_token(session, app.config["SECRET_KEY"], guardian.id, "reset")
    session.commit()
    phone, tablet = app.test_client(), app.test_client()
    login(guardian, phone)
    login(guardian, tablet)
    new = "a brand new family password"
    r = post_form(f"/family/password-reset/{token}", {"password": new, "password_again": new}, c=app.test_client())
    assert r.status_code == 302
    for c in (phone, tablet):
        assert c.get("/family/").status_code == 302
    session.expire_all()
    assert session.get(Guardian, guardian.id).session_version == guardian.session_version


def test_previous_sign_in_is_the_one_before_this(app, make, session, post_form):
    before = datetime(2026, 11, 2, 0, 30, tzinfo=UTC)  # 09:30 in Tokyo
    staff = make.staff("teacher", last_login_at=before)
    session.commit()
    c = app.test_client()
    r = _staff_sign_in(post_form, c, staff.email)
    assert r.headers["Location"].endswith("/staff/")
    home = _html(c.get("/staff/"))
    session.expire_all()
    now = session.get(Staff, staff.id).last_login_at
    with app.test_request_context(), force_locale("ja"):
        shown, current = local_datetime(before), local_datetime(now)
    assert f"前回のサインイン：{shown}" in home
    assert current not in home

    # The next sign-in shows this one.
    staff = session.get(Staff, staff.id)
    staff.totp_last_step = None  # a second sign-in within the same 30 seconds, for the test
    session.commit()
    c2 = app.test_client()
    _staff_sign_in(post_form, c2, staff.email)
    assert f"前回のサインイン：{current}" in _html(c2.get("/staff/"))
