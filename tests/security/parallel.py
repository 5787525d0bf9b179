"""Real parallel requests at the live server, for single-use values.

A race test commits its data (the live server's requests run in their own
threads, each with its own database session), builds one :class:`LiveClient`
per attacker, prepares each client's request (its CSRF token, its cookies),
and then releases them all at once with :func:`fire_together`: a barrier
holds every thread until all are ready, so the requests reach the server in
the same instant. The property is then asserted on the database (exactly one
account, one sign-in, one answer), not on timing.

On PostgreSQL these are true concurrent transactions; on SQLite the database
serialises writers, which the same tests also survive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from tests.conftest import csrf_token_from

DEADLINE = 60  # seconds any one request, or the barrier, may take


@dataclass
class Answer:
    status: int
    url: str
    text: str


class LiveClient:
    """One browser-like visitor of the live server: its own cookies."""

    def __init__(self, base_url: str, *, language: str | None = None):
        self.base = base_url.rstrip("/")
        self.http = requests.Session()
        if language:
            self.http.headers["Accept-Language"] = language

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def get(self, path: str, **kw) -> Answer:
        r = self.http.get(self.url(path), timeout=DEADLINE, **kw)
        return Answer(r.status_code, r.url, r.text)

    def token(self, page: str) -> str:
        """The CSRF token of the form on ``page`` (fetch it before the race)."""
        r = self.http.get(self.url(page), timeout=DEADLINE)
        assert r.status_code == 200, f"{page}: {r.status_code}"
        return csrf_token_from(r.text)

    def post(self, path: str, data: dict, *, token: str | None = None, follow: bool = False) -> Answer:
        payload = dict(data)
        if token is not None:
            payload["csrf_token"] = token
        r = self.http.post(self.url(path), data=payload, timeout=DEADLINE, allow_redirects=follow)
        return Answer(r.status_code, r.headers.get("Location", r.url), r.text)

    def post_form(self, path: str, data: dict, *, page: str | None = None, follow: bool = False) -> Answer:
        """GET the form's page for its token, then POST (not for the race itself)."""
        return self.post(path, data, token=self.token(page or path), follow=follow)


def fire_together(calls: Sequence[Callable[[], object]]) -> list:
    """Run every call in its own thread, released at one instant; their results in order.

    Prepare everything a call needs (tokens, cookies) before: the call itself
    should be the one request of the race. An exception in a call is returned
    in its place, never swallowed silently.
    """
    barrier = threading.Barrier(len(calls), timeout=DEADLINE)

    def run(call):
        barrier.wait()
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - the test asserts on it
            return exc

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls, timeout=DEADLINE * 2))
