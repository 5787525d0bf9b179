"""Security headers on every kind of page, and the session cookie's flags.

``tests/test_app.py`` and ``tests/portal/test_pages_quality.py`` check the
headers on the public pages; here every kind of response is checked: public,
guardian, student and staff pages, error pages (403, 404, the CSRF 400) and
downloads (JSON, CSV, PDF). The production cookie flags (``Secure``) and HSTS
are checked in ``tests/portal/test_audit_config_logs.py::test_secure_cookie_flags_in_production``.
"""

from __future__ import annotations

import pytest

from portal.people.models import Role
from tests.conftest import PASSWORD, sign_in_as

REFERRER_POLICIES = {"same-origin", "no-referrer", "strict-origin", "strict-origin-when-cross-origin"}


def assert_strict_headers(resp, what: str) -> None:
    csp = resp.headers.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("default-src") == ["'self'"], (what, csp)
    assert directives.get("script-src") == ["'self'"], (what, csp)
    assert directives.get("object-src") == ["'none'"], (what, csp)
    assert directives.get("frame-ancestors") == ["'none'"], (what, csp)
    assert directives.get("base-uri") == ["'self'"], (what, csp)
    assert directives.get("form-action") == ["'self'"], (what, csp)
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, (what, csp)
    assert resp.headers.get("X-Content-Type-Options") == "nosniff", what
    assert resp.headers.get("X-Frame-Options") == "DENY", what
    assert resp.headers.get("Referrer-Policy") in REFERRER_POLICIES, what


def _people(make, session):
    child = make.child()
    people = {
        "guardian": make.guardian(child),
        "student": child,
        "teacher": make.staff(Role.teacher, schools=[make.school()]),
        "coordinator": make.staff(Role.coordinator),
    }
    session.commit()
    return people


# (who, method, url, expected status) — one of each kind of response.
PAGES = [
    (None, "GET", "/", 200),
    (None, "GET", "/resources/", 200),
    (None, "GET", "/consent/purposes", 200),
    (None, "GET", "/signin", 200),
    (None, "GET", "/no-such-page", 404),
    (None, "POST", "/family/register", 400),  # the CSRF page
    ("guardian", "GET", "/family/", 200),
    ("guardian", "GET", "/staff/", 403),
    ("student", "GET", "/student/", 200),
    ("teacher", "GET", "/staff/", 200),
    ("teacher", "GET", "/staff/checkins", 200),
    ("coordinator", "GET", "/resources/manage/export.json", 200),
    ("coordinator", "GET", "/resources/manage/export.csv", 200),
    ("coordinator", "GET", "/staff/cases/municipality.csv", 200),
]


@pytest.mark.parametrize(("who", "method", "url", "status"), PAGES)
def test_every_kind_of_page_sends_the_strict_headers(app, make, session, who, method, url, status):
    people = _people(make, session)
    c = app.test_client()
    if who:
        sign_in_as(c, people[who])
    resp = c.open(url, method=method)
    assert resp.status_code == status
    assert_strict_headers(resp, url)
    if who:
        assert "no-store" in resp.headers.get("Cache-Control", ""), url  # signed-in pages are never cached


def test_session_cookie_is_httponly_and_samesite(app, make, session, client, post_form):
    guardian = make.guardian(make.child(), email="cookie@example.invalid")
    session.commit()
    resp = post_form("/family/signin", {"email": "cookie@example.invalid", "password": PASSWORD})
    assert resp.status_code == 302
    cookies = [v for k, v in resp.headers.items() if k == "Set-Cookie" and v.startswith("mimamori_session=")]
    assert cookies, "no session cookie set at sign-in"
    for cookie in cookies:
        flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
        assert "httponly" in flags
        assert flags.get("samesite", "").lower() in ("samesite=lax", "samesite=strict")
    assert guardian.id
