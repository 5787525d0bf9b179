"""Open redirects: every ``next`` the application follows stays on this site.

``tests/portal/test_sign_in_security.py::test_sign_in_never_redirects_off_site``
covers the family sign-in with the classic targets. Here the tricks that rely
on browsers dropping control characters inside a URL (``/<TAB>/evil`` becomes
``//evil``, a protocol-relative, off-site address) and header splitting
(``%0d%0a``) are tried on every place that follows a ``next``: the family
sign-in, the staff sign-in (carried across the TOTP step) and the language
switch. Each must land on a same-site path, never a 500.
"""

from __future__ import annotations

from urllib.parse import quote

import pyotp
import pytest

from tests.conftest import PASSWORD, TOTP_SECRET, csrf_token_from, sign_in_as

TARGETS = [
    "/\t/evil.example/", "/\n/evil.example/", "/\r\n/evil.example/", "/\r\nSet-Cookie: x=1",
    "/%09/evil.example/",  # double-encoded: a same-site path, harmless, may be followed
    "//evil.example/", "/\\evil.example", "https://evil.example/", "javascript:alert(1)",
    "/\x00/evil.example", " //evil.example/", "\t//evil.example/",
]


def assert_on_site(resp, target):
    assert resp.status_code in (302, 303), (target, resp.status_code)
    location = resp.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location, (target, location)
    assert not any(ord(ch) < 0x20 for ch in location), (target, location)
    assert "Set-Cookie: x" not in str(resp.headers)


@pytest.mark.parametrize("target", TARGETS)
def test_family_sign_in_next_stays_on_site(make, session, post_form, target):
    guardian = make.guardian(make.child())
    session.commit()
    r = post_form(f"/family/signin?next={quote(target)}", {"email": guardian.email, "password": PASSWORD},
                  page="/family/signin")
    assert_on_site(r, target)
    if "%" not in target:
        assert r.headers["Location"] == "/family/"


@pytest.mark.parametrize("target", TARGETS)
def test_staff_sign_in_next_stays_on_site_across_the_totp_step(make, session, post_form, target):
    staff = make.staff("teacher", schools=[make.school()])
    session.commit()
    r = post_form(f"/staff/signin?next={quote(target)}", {"email": staff.email, "password": PASSWORD},
                  page="/staff/signin")
    assert r.status_code == 302
    r = post_form("/staff/totp", {"code": pyotp.TOTP(TOTP_SECRET).now()})
    assert_on_site(r, target)
    if "%" not in target:
        assert r.headers["Location"].endswith("/staff/")


@pytest.mark.parametrize("target", TARGETS)
def test_language_switch_next_stays_on_site(app, make, session, target):
    guardian = make.guardian(make.child())
    session.commit()
    c = app.test_client()
    sign_in_as(c, guardian)
    token = csrf_token_from(c.get("/family/").get_data(as_text=True))
    r = c.post("/language", data={"csrf_token": token, "locale": "en", "next": target})
    assert_on_site(r, target)


def test_a_same_site_next_is_still_followed(make, session, post_form):
    guardian = make.guardian(make.child())
    session.commit()
    r = post_form(f"/family/signin?next={quote('/resources/?q=子ども 食堂')}",
                  {"email": guardian.email, "password": PASSWORD}, page="/family/signin")
    assert r.headers["Location"].startswith("/resources/?q=")
