"""Signed-in visitors of the live server, for the single-use race tests.

:class:`tests.security.parallel.LiveClient` is an anonymous browser. A race
on a staff action needs N browsers of signed-in people; signing each in
through the pages would spend a TOTP step per browser, so the session is
made the way :func:`tests.conftest.sign_in_as` makes it for the test client
(the same cookie the sign-in pages give) and handed to the live client.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.conftest import sign_in_as
from tests.security.parallel import LiveClient


def signed_in(app, base_url: str, obj, *, language: str | None = "ja") -> LiveClient:
    """A live client signed in as ``obj`` (a Staff, Guardian or Child), with its own session."""
    tc = app.test_client()
    sign_in_as(tc, obj)
    name = app.config.get("SESSION_COOKIE_NAME", "session")
    cookie = tc.get_cookie(name)
    assert cookie is not None, "no session cookie"
    live = LiveClient(base_url, language=language)
    # Under the server's own host and path, so that the cookie its answers set replaces this one.
    live.http.cookies.set(name, cookie.value, domain=urlsplit(base_url).hostname, path="/")
    return live
