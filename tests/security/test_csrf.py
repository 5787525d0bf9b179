"""CSRF: every state-changing route refuses a request without its session's token.

Data-driven over ``app.url_map``: every rule that accepts POST, PUT, PATCH or
DELETE is called, by a person of every role the access tables
(``tests/access/*.py``) allow on it, twice: with no token, and with a valid
token taken from *another* session (what a forged cross-site form would
carry). Both must get 400 with the clear "the form has expired" page, and no
table in the database may change (row counts of every table, before and
after). A new state-changing route is covered the day it is added; a route
exempt from CSRF must be listed in :data:`EXEMPT` with its reason, and the
test fails if the application exempts anything not listed there.

The role check runs before the CSRF check (``portal/__init__.py``), so the
calls use the roles that would otherwise reach the view: the CSRF check is
what stops them, not the access rule.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.auth.access import ANONYMOUS
from portal.extensions import csrf, db
from tests.conftest import csrf_token_from, sign_in_as
from tests.test_access_matrix import _principal_for_role, _url, expected_table, routes

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
CSRF_PAGE_JA = "フォームの有効期限が切れました"

# endpoint -> why it may take a state-changing request without a CSRF token.
EXEMPT: dict[str, str] = {}


def unsafe_rules(app):
    return [r for r in routes(app) if r.methods & UNSAFE]


def table_counts() -> dict[str, int]:
    with db.engine.connect() as conn:
        return {t.name: conn.scalar(select(func.count()).select_from(t)) for t in db.metadata.sorted_tables}


def _foreign_token(app) -> str:
    """A genuine token, from a different (anonymous) visitor's session."""
    other = app.test_client()
    return csrf_token_from(other.get("/signin").get_data(as_text=True))


def test_nothing_is_exempt_from_csrf_unless_listed(app):
    exempt_views = set(csrf._exempt_views)
    exempt_endpoints = {
        r.endpoint for r in routes(app)
        if ".".join((app.view_functions[r.endpoint].__module__, app.view_functions[r.endpoint].__name__)) in exempt_views
    }
    assert exempt_endpoints == set(EXEMPT), f"exempt from CSRF but not listed with a reason: {exempt_endpoints - set(EXEMPT)}"
    assert not csrf._exempt_blueprints, "a whole blueprint is exempt from CSRF"
    assert app.config.get("WTF_CSRF_ENABLED", True) is True
    assert app.config.get("WTF_CSRF_CHECK_DEFAULT", True) is True


def _roles_by_rule(app):
    table = expected_table()
    return [(rule, sorted(table.get(rule.endpoint, ()))) for rule in unsafe_rules(app) if rule.endpoint not in EXEMPT]


def test_every_state_changing_route_is_checked(app):
    """The walk below really covers the routes (guards against an empty table)."""
    pairs = [(rule.rule, role) for rule, roles in _roles_by_rule(app) for role in roles]
    assert len({r for r, _ in pairs}) == len([r for r in unsafe_rules(app) if r.endpoint not in EXEMPT])
    assert all(roles for _, roles in _roles_by_rule(app)), "a POST route no role may use"
    assert len(pairs) >= 100


@pytest.mark.parametrize("role", ["anonymous", "guardian", "student", "teacher", "school_lead", "counsellor",
                                  "social_worker", "coordinator", "data_steward", "analyst", "administrator"])
def test_state_changing_routes_refuse_requests_without_the_sessions_token(app, make, role):
    who = _principal_for_role(make, role)
    db.session.commit()
    foreign = _foreign_token(app)
    before = table_counts()
    failures: list[str] = []
    checked = 0
    for rule, roles in _roles_by_rule(app):
        if role not in roles:
            continue
        url = _url(rule)
        for method in sorted(rule.methods & UNSAFE):
            for label, data in (("no token", {}), ("another session's token", {"csrf_token": foreign})):
                c = app.test_client()
                if who is not None:
                    sign_in_as(c, who)
                # The victim's own session holds a CSRF secret of its own (any page with a form sets it).
                c.get("/signin", follow_redirects=True)
                resp = c.open(url, method=method, data=data)
                checked += 1
                html = resp.get_data(as_text=True)
                if resp.status_code != 400 or CSRF_PAGE_JA not in html:
                    failures.append(f"{method} {rule.rule} as {role} with {label}: {resp.status_code}")
    db.session.expire_all()
    after = table_counts()
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    assert not failures, "\n".join(failures)
    assert not changed, f"tables changed by refused requests: {changed}"
    if role != ANONYMOUS and role not in ("analyst",):
        assert checked > 0, f"no state-changing route for {role}?"


def test_csrf_page_is_clear_in_english_too(app, make):
    guardian = make.guardian(make.child(), locale="en")
    db.session.commit()
    c = app.test_client()
    sign_in_as(c, guardian)
    resp = c.post("/resources/1/favourite", data={})
    assert resp.status_code == 400
    assert "The form has expired" in resp.get_data(as_text=True)


# A GET must not change anything but the audit log (staff reads are logged): else a link or
# an <img src> on another site would do what the CSRF token protects.
GET_MAY_WRITE = {"audit_event"}


@pytest.mark.parametrize("role", ["anonymous", "guardian", "student", "teacher", "school_lead", "counsellor",
                                  "social_worker", "coordinator", "data_steward", "analyst", "administrator"])
def test_get_requests_change_nothing(app, make, role):
    table = expected_table()
    who = _principal_for_role(make, role)
    db.session.commit()
    before = table_counts()
    for rule in routes(app):
        if "GET" not in rule.methods or role not in table.get(rule.endpoint, ()):
            continue
        c = app.test_client()
        if who is not None:
            sign_in_as(c, who)
        c.get(_url(rule))
    db.session.expire_all()
    after = table_counts()
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t] and t not in GET_MAY_WRITE}
    assert not changed, f"GET requests changed tables: {changed}"
