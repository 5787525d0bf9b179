"""No route reads a large body unless it takes a file.

Anonymous routes accepted a 200 MB form body. Every route now takes at most
64 KiB (``portal.bodylimit``); the routes that take a file say so
(``@accepts_files``) and get the upload limit. The test walks every POST
route in the URL map, so a new route cannot ship without a limit.
"""

from __future__ import annotations

import io

import pytest

from portal.bodylimit import MAX_FORM_BYTES, UPLOAD, declared_limit
from tests.security import routewalk
from tests.security.test_idor import build_world

BODY = 100 * 1024
#: The routes that take a file, each with its upload form.
UPLOAD_ROUTES = {"linkage.imports", "consent.staff_paper", "resources.import_file"}
#: Routes (no file) with a larger form, and why.
LONG_FORMS = {
    "screening.rule_set_new": "a rule set of up to 20,000 characters",
    "screening.rule_set": "a rule set of up to 20,000 characters",
}


def _post_rules(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "POST" in rule.methods and not rule.endpoint.endswith("static"):
            yield rule


def _url(rule) -> str:
    values = {a: (1 if type(rule._converters.get(a)).__name__ == "IntegerConverter" else "x") for a in rule.arguments}
    return rule.build(values, append_unknown=False)[1]


def test_a_stranger_gets_the_form_limit_on_every_post_route(app, client):
    """Anonymous: 100 KB is refused everywhere, upload routes included (only their users get the upload limit)."""
    failures = []
    for rule in _post_rules(app):
        resp = client.post(_url(rule), data={"text": "a" * BODY})
        if resp.status_code != 413:
            failures.append(f"POST {rule.rule} ({rule.endpoint}): {resp.status_code} to a stranger's 100 KB body")
        resp.close()
    assert not failures, "\n".join(failures)


def test_every_post_route_refuses_a_100_kb_body_unless_it_takes_a_file(app, session, make):
    """As someone each route lets in: only the upload routes (and the long forms) accept 100 KB."""
    from portal.auth.access import roles_for

    w = build_world(make, session)
    session.commit()
    insiders = {**routewalk.STAFF_INSIDERS, "guardian": "guardian_v", "student": "victim"}
    refused, accepted, failures = [], [], []
    for rule in _post_rules(app):
        declared = declared_limit(app.view_functions[rule.endpoint])
        roles = roles_for(app.view_functions[rule.endpoint]) or frozenset()
        who = next((insiders[r] for r in sorted(roles) if r in insiders), None)
        client = routewalk.client_as(app, w, who) if who else app.test_client()
        resp = client.post(_url(rule), data={"text": "a" * BODY})
        status = resp.status_code
        resp.close()
        if rule.endpoint in UPLOAD_ROUTES or rule.endpoint in LONG_FORMS:
            if status == 413:
                failures.append(f"POST {rule.rule} ({rule.endpoint}): takes a file or a long form, refused 100 KB")
            accepted.append(rule.endpoint)
        elif status != 413:
            failures.append(f"POST {rule.rule} ({rule.endpoint}): read a 100 KB body ({status}); "
                            f"declared {declared!r}")
        else:
            refused.append(rule.endpoint)
    assert not failures, "\n".join(failures)
    assert len(refused) > 40 and set(accepted) == UPLOAD_ROUTES | set(LONG_FORMS)


def test_only_the_upload_routes_are_marked_and_long_forms_stay_bounded(app, session, make):
    w = build_world(make, session)
    session.commit()
    client = routewalk.client_as(app, w, "steward")
    marked = {r.endpoint for r in app.url_map.iter_rules()
              if declared_limit(app.view_functions.get(r.endpoint)) == UPLOAD}
    assert marked == UPLOAD_ROUTES
    for endpoint in LONG_FORMS:
        (rule,) = [r for r in app.url_map.iter_rules() if r.endpoint == endpoint]
        limit = declared_limit(app.view_functions[endpoint])
        assert isinstance(limit, int) and MAX_FORM_BYTES < limit <= 256 * 1024
        resp = client.post(_url(rule), data={"text": "a" * (limit + 1)})
        assert resp.status_code == 413, endpoint


def test_a_body_sent_without_a_length_is_cut_at_the_limit(app, client):
    """Chunked bodies have no Content-Length: Werkzeug stops reading at the route's limit."""
    from portal.bodylimit import limit_for

    body = b"text=" + b"a" * BODY
    resp = client.post("/signin", input_stream=io.BytesIO(body), content_type="application/x-www-form-urlencoded",
                       environ_overrides={"wsgi.input_terminated": True})
    assert resp.status_code == 413
    assert limit_for(app, app.view_functions["auth.sign_in"]) == MAX_FORM_BYTES


@pytest.mark.parametrize("lang, heading", [("ja", "送信された内容が大きすぎます"), ("en", "What you sent is too large")])
def test_the_413_page_says_what_happened_in_the_users_language(app, client, lang, heading):
    with client.session_transaction() as sess:
        sess["locale"] = lang
    resp = client.post("/signin", data={"text": "a" * BODY})
    assert resp.status_code == 413
    page = resp.get_data(as_text=True)
    assert heading in page and "64 KB" in page


def test_every_page_with_a_file_form_is_an_upload_route(app, session, make):
    """A page showing a multipart form posts to a route marked @accepts_files (else its upload would be refused)."""
    w = build_world(make, session)
    routewalk.build_everything(w, session)
    session.commit()
    found = set()
    for v in routewalk.staff_visits(app, session, w):
        resp = routewalk.client_as(app, w, v.who).get(v.url)
        if 'enctype="multipart/form-data"' in routewalk.text_of(resp):
            found.add(v.endpoint)
        resp.close()
    session.rollback()
    assert found == UPLOAD_ROUTES
