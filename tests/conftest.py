"""Test harness: one application per run, on SQLite or PostgreSQL.

``DATABASE_URL`` chooses the backend. On PostgreSQL the run gets a database of
its own (``<name>_<pid>``), created here and dropped afterwards, so parallel
runs never meet. Every test starts from empty tables.

Factories (``make_child``, ``make_guardian`` …) build the people model; domain
test packages add their own in their ``conftest.py``.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import date
from pathlib import Path

os.environ["MIMAMORI_ENV"] = "testing"
_tmp = Path(tempfile.mkdtemp(prefix="mimamori-test-"))
os.environ.setdefault("MIMAMORI_INSTANCE", str(_tmp / "instance"))

import pytest  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from portal import create_app  # noqa: E402
from portal.auth import service as auth  # noqa: E402
from portal.auth.passwords import hash_password  # noqa: E402
from portal.extensions import db as _db  # noqa: E402
from portal.orm import utcnow  # noqa: E402
from portal.people.models import (  # noqa: E402
    Child,
    Enrolment,
    Guardian,
    GuardianChild,
    Role,
    School,
    SchoolClass,
    SchoolKind,
    SchoolYear,
    Staff,
    StaffScope,
)

PASSWORD = "correct horse battery"
# pyotp refuses secrets under 112 bits: 32 base32 characters are 160.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _database_url() -> tuple[str, str | None]:
    """(url for the app, admin url to drop it afterwards or None)."""
    url = os.environ.get("DATABASE_URL")
    if not url or url.startswith("sqlite"):
        return f"sqlite:///{_tmp / 'test.sqlite3'}", None
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    base = make_url(url)
    name = f"{base.database or 'test'}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = base.set(database="postgres")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False), admin.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def app():
    url, admin = _database_url()
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "test-secret-key",
            "SERVER_NAME": None,
            "RATELIMIT_ENABLED": True,
            "LOGIN_RATE_LIMIT": "1000 per minute",
            "LOGIN_FAILURE_RATE_LIMIT": "1000 per minute",
            "MAIL_BACKEND": "memory",
        }
    )
    with app.app_context():
        _db.create_all()

    # Each test holds one application context, and Flask reuses it for every
    # test-client request, so ``g`` (Flask-Login's user, Flask-Babel's locale,
    # Flask-WTF's CSRF token) would leak from one request into the next, even
    # across clients. In production every request has its own ``g``: so here.
    # Likewise the database session: in production each request has its own
    # (removed when the request ends), so it loads what it shows. Here the
    # test and its requests share one, so every request starts and ends with
    # everything loaded expired: the request reads the database, and the test
    # reads what the request wrote.
    from flask import g, request_finished, request_started

    def _fresh_g(sender, **extra):
        for name in list(g):
            g.pop(name)
        _db.session.expire_all()

    def _expire_after(sender, **extra):
        _db.session.expire_all()

    request_started.connect(_fresh_g, app, weak=False)
    request_finished.connect(_expire_after, app, weak=False)
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()
    if admin:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        engine.dispose()


def _empty_tables():
    meta = _db.metadata
    with _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in meta.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            conn.execute(text("PRAGMA foreign_keys=OFF"))
            for table in reversed(meta.sorted_tables):
                conn.execute(table.delete())
            conn.execute(text("PRAGMA foreign_keys=ON"))


@pytest.fixture(autouse=True)
def _app_context(app):
    from portal.extensions import limiter

    with app.app_context():
        limiter.reset()
        app.extensions["mimamori_outbox"] = []
        yield
        _db.session.rollback()
        _db.session.remove()
        _empty_tables()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def session(app):
    return _db.session


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def outbox(app):
    return app.extensions.setdefault("mimamori_outbox", [])


# -- factories ----------------------------------------------------------------


class Factory:
    """Builds people with sensible defaults; every call flushes."""

    def __init__(self, session):
        self.s = session
        self.n = 0

    def _next(self) -> int:
        self.n += 1
        return self.n

    def year(self) -> SchoolYear:
        y = self.s.query(SchoolYear).filter_by(is_current=True).one_or_none()
        if y is None:
            y = SchoolYear(fiscal_year=2026, starts_on=date(2026, 4, 1), ends_on=date(2027, 3, 31), is_current=True)
            self.s.add(y)
            self.s.flush()
        return y

    def school(self, kind: SchoolKind = SchoolKind.elementary, **kw) -> School:
        n = self._next()
        s = School(code=kw.pop("code", f"S{n:03d}"), name=kw.pop("name", f"テスト小学校{n}"), kind=kind, **kw)
        self.s.add(s)
        self.s.flush()
        return s

    def school_class(self, school: School | None = None, grade: int = 3, name: str = "1", teacher: Staff | None = None) -> SchoolClass:
        school = school or self.school(SchoolKind.junior_high if grade >= 7 else SchoolKind.elementary)
        c = SchoolClass(school_id=school.id, school_year_id=self.year().id, grade=grade, name=name,
                        homeroom_teacher_id=teacher.id if teacher else None)
        self.s.add(c)
        self.s.flush()
        return c

    def child(self, school_class: SchoolClass | None = None, *, grade: int = 3, pin: str | None = None, **kw) -> Child:
        n = self._next()
        school_class = school_class or self.school_class(grade=grade)
        c = Child(
            student_no=kw.pop("student_no", f"T{n:08d}"),
            name=kw.pop("name", f"試験 太郎{n}"),
            name_kana=kw.pop("name_kana", "シケン タロウ"),
            birth_date=kw.pop("birth_date", date(2026 - 6 - school_class.grade, 6, 1)),
            sex=kw.pop("sex", "M"),
            **kw,
        )
        if pin:
            c.pin_hash = hash_password(pin)
        self.s.add(c)
        self.s.flush()
        self.s.add(Enrolment(child_id=c.id, school_year_id=self.year().id, class_id=school_class.id, attendance_no=n))
        self.s.flush()
        return c

    def guardian(self, *children: Child, email: str | None = None, password: str | None = PASSWORD, locale: str = "ja", **kw) -> Guardian:
        n = self._next()
        g = Guardian(
            name=kw.pop("name", f"保護者 花子{n}"),
            email=email if email is not None else f"guardian{n}@example.invalid",
            password_hash=hash_password(password) if password else None,
            locale=locale,
            **kw,
        )
        if password and "email_confirmed_at" not in kw:
            g.email_confirmed_at = utcnow()  # a test's family account has proven its address
        self.s.add(g)
        self.s.flush()
        for c in children:
            self.s.add(GuardianChild(guardian_id=g.id, child_id=c.id))
        self.s.flush()
        return g

    def staff(self, role: Role | str = Role.teacher, *, schools=(), email: str | None = None, totp_secret: str | None = TOTP_SECRET, **kw) -> Staff:
        n = self._next()
        role = Role(role)
        s = Staff(
            email=email or f"{role.value}{n}@example.invalid",
            name=kw.pop("name", f"職員 {n}"),
            role=role,
            password_hash=hash_password(kw.pop("password", PASSWORD)),
            **kw,
        )
        if totp_secret:
            auth.set_totp_secret(s, totp_secret)
        s.scopes = [StaffScope(school_id=sc.id) for sc in schools]
        self.s.add(s)
        self.s.flush()
        return s

    def teacher_with_class(self, grade: int = 3, school: School | None = None) -> tuple[Staff, SchoolClass]:
        school = school or self.school(SchoolKind.junior_high if grade >= 7 else SchoolKind.elementary)
        t = self.staff(Role.teacher, schools=[school])
        return t, self.school_class(school, grade=grade, teacher=t)


@pytest.fixture
def make(session) -> Factory:
    return Factory(session)


def sign_in_as(client, obj) -> None:
    """Put a signed-in session into the test client without the sign-in pages."""
    import time

    principal = auth.principal_for(obj)
    with client.session_transaction() as sess:
        sess["_user_id"] = principal.get_id()
        sess["_fresh"] = True
        sess["last_seen"] = time.time()


@pytest.fixture
def login(client):
    def _login(obj, c=None):
        sign_in_as(c or client, obj)
        return c or client

    return _login


def csrf_token_from(html: str) -> str:
    import re

    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert m, "page has no CSRF token"
    return m.group(1)


@pytest.fixture
def post_form(client):
    """POST a form the way a browser does: GET the page for its CSRF token first."""

    def _post(url: str, data: dict, *, page: str | None = None, c=None, follow_redirects: bool = False):
        c = c or client
        html = c.get(page or url).get_data(as_text=True)
        payload = {"csrf_token": csrf_token_from(html), **data}
        return c.post(url, data=payload, follow_redirects=follow_redirects)

    return _post


# -- browser tests --------------------------------------------------------------

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def live_server(app):
    """The test application served on a free localhost port, in a thread."""
    import threading

    from werkzeug.serving import WSGIRequestHandler, make_server

    class ClosingHandler(WSGIRequestHandler):
        """Close the response of a request whose client went away.

        Werkzeug's development server skips ``close()`` on the response when
        the browser resets the connection mid-response (a favicon request
        abandoned by a navigation), leaving a static file open; warnings are
        errors here, so close it ourselves.
        """

        def connection_dropped(self, error, environ=None):
            body = (environ or {}).pop("tests.response_body", None)
            if body is not None and hasattr(body, "close"):
                body.close()

    def keep_body(environ, start_response):
        body = app(environ, start_response)
        environ["tests.response_body"] = body
        return body

    server = make_server("127.0.0.1", 0, keep_body, threaded=True, request_handler=ClosingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def _browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture
def browser_page(_browser, live_server):
    """A fresh browser context (no cookies); ``browser_page.goto('/path')`` is relative."""
    context = _browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844})
    context.set_default_timeout(15000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def new_page(_browser, live_server):
    """Factory for extra independent browser pages (a second user)."""
    contexts = []

    def _new(width: int = 1280, height: int = 900):
        ctx = _browser.new_context(base_url=live_server, viewport={"width": width, "height": height})
        ctx.set_default_timeout(15000)
        contexts.append(ctx)
        return ctx.new_page()

    yield _new
    for ctx in contexts:
        ctx.close()


def browser_set_language(page, locale: str) -> None:
    """Use the language switcher in the page header."""
    page.select_option("#lang-select", locale)
    page.locator(".lang-form button").click()
    page.wait_for_load_state()


def browser_sign_in_staff(page, email: str, password: str = PASSWORD, totp_secret: str = TOTP_SECRET) -> None:
    import pyotp

    page.goto("/staff/signin")
    page.fill("#email", email)
    page.fill("#password", password)
    page.locator("main form button[type=submit]").click()
    page.fill("#code", pyotp.TOTP(totp_secret).now())
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/staff/**")


def browser_sign_in_guardian(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/family/signin")
    page.fill("#email", email)
    page.fill("#password", password)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/family/**")


def browser_sign_in_student(page, student_no: str, pin: str) -> None:
    page.goto("/student/signin")
    page.fill("#student_no", student_no)
    page.fill("#pin", pin)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/student/**")
