"""Every route, every role: allowed or denied exactly as the tables say.

A route with no rule fails here (and is denied in the application), so a new
page cannot ship without deciding who may use it.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import tests.access as access_tables
from portal.auth.access import ALL_ROLES, ANONYMOUS, roles_for
from portal.people.models import Role


def expected_table() -> dict[str, frozenset[str]]:
    table: dict[str, frozenset[str]] = {}
    for mod in pkgutil.iter_modules(access_tables.__path__):
        module = importlib.import_module(f"tests.access.{mod.name}")
        for endpoint, roles in module.EXPECTED.items():
            assert endpoint not in table, f"{endpoint} is in two access tables"
            table[endpoint] = frozenset(roles)
    return table


def routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.endswith(".static"):  # blueprint static files
            continue
        yield rule


def test_every_route_has_a_rule_and_a_table_row(app):
    table = expected_table()
    missing_rule, missing_row, mismatch = [], [], []
    for rule in routes(app):
        declared = roles_for(app.view_functions[rule.endpoint])
        if declared is None:
            missing_rule.append(rule.endpoint)
        elif rule.endpoint not in table:
            missing_row.append(rule.endpoint)
        elif declared != table[rule.endpoint]:
            mismatch.append((rule.endpoint, sorted(declared ^ table[rule.endpoint])))
    stale = set(table) - {r.endpoint for r in routes(app)}
    assert not missing_rule, f"routes without an access rule: {missing_rule}"
    assert not missing_row, f"routes missing from the access tables: {missing_row}"
    assert not mismatch, f"rules differing from the tables: {mismatch}"
    assert not stale, f"table rows for routes that do not exist: {sorted(stale)}"


def _principal_for_role(make, role):
    if role == ANONYMOUS:
        return None
    if role == "guardian":
        return make.guardian(make.child())
    if role == "guardian_unconfirmed":  # registered, address not proven yet
        return make.guardian(make.child(), email_confirmed_at=None)
    if role == "student":
        return make.child()
    return make.staff(Role(role), schools=[make.school()])


def _url(rule) -> str:
    values = {}
    for arg in rule.arguments:
        conv = rule._converters.get(arg)
        values[arg] = 999999 if conv is not None and type(conv).__name__ == "IntegerConverter" else "x"
    return rule.build(values, append_unknown=False)[1]


@pytest.mark.parametrize("role", ALL_ROLES)
def test_route_by_role(app, make, login, role):
    """Walk every route as this role: allowed routes pass the gate, others are refused."""
    table = expected_table()
    who = _principal_for_role(make, role)
    from portal.extensions import db

    db.session.commit()
    failures = []
    checked = 0
    for rule in routes(app):
        allowed = role in table.get(rule.endpoint, frozenset())
        url = _url(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            c = app.test_client()
            if who is not None:
                login(who, c)
            resp = c.open(url, method=method)
            checked += 1
            denied = resp.status_code == 403 or (
                resp.status_code == 302 and "/signin" in resp.headers.get("Location", "")
                and role == ANONYMOUS
            )
            if allowed and resp.status_code == 403:
                failures.append(f"{method} {rule.rule}: allowed for {role} but refused")
            if not allowed and not denied:
                failures.append(f"{method} {rule.rule}: denied for {role} but got {resp.status_code}")
    assert not failures, "\n".join(failures)
    assert checked > 0
