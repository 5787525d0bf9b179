"""XSS: whatever people write, and whatever is put in a URL, comes back escaped.

Stored XSS (:func:`test_stored_text_is_shown_escaped_on_every_page`): the demo
data set (every domain: cases, plans, referrals, check-ins, questionnaires,
consent documents, campaigns, the catalogue ...) is loaded, every free-text
field in :data:`STORED` is overwritten with a payload carrying its own tag
(``<script>alert(xq07z)</script>"><img src=x onerror=alert(xq07z)>``), and then
every page reachable by links from each role's home page (and every page of
the role without a path argument) is fetched as that role and parsed. No page
may contain live injected markup (a ``<script>`` without ``src``, an ``on*``
attribute, ``<img src=x>``, a ``javascript:`` URL), and every field in the
table must be *seen* (escaped) on at least one page, so the table's "where
shown" column is true and the test is not passing because nothing rendered.
The same crawl checks that reading pages changed no table's row count except
the audit log's (a cross-site link or ``<img>`` can do nothing).

:func:`test_text_written_through_the_forms_is_shown_escaped` writes payloads
through the real forms for the fields whose write path transforms text
(staff names, rule names, data-request text, catalogue entries, campaigns),
then renders the pages that show them.

Reflected XSS (:func:`test_query_parameters_are_echoed_escaped`): every GET
route, as a role allowed on it, with every query parameter the views read
(search boxes, filters, ``next``, paging) and every string path argument set
to the payload.
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
from urllib.parse import quote, urlsplit

import pytest
from sqlalchemy import String, UniqueConstraint, cast, literal, select, update

from portal.auth.access import ANONYMOUS
from portal.extensions import db
from tests.conftest import sign_in_as
from tests.security.htmlcheck import payload, scan
from tests.test_access_matrix import _principal_for_role, expected_table, routes

# (table.column, how it is written, where it is shown). Tag = "xq<row>z".
STORED: list[tuple[str, str, str]] = [
    ("child.name", "roster import / setup", "staff child pages, queues, family home"),
    ("staff.name", "administrator's staff form", "staff list, case pages, header"),
    ("school.name", "setup", "headers, dashboards, filters"),
    ("school_class.name", "roster import", "class lists, dashboards"),
    ("resource_service.name_ja", "coordinator's service form / HSDS import", "catalogue, detail, manage, campaigns"),
    ("resource_service.name_en", "coordinator's service form / HSDS import", "catalogue in English"),
    ("resource_service.description_ja", "coordinator's service form / HSDS import", "catalogue detail"),
    ("resource_service.fees_ja", "coordinator's service form", "catalogue detail"),
    ("resource_service.location_name", "coordinator's service form", "catalogue detail"),
    ("resource_service.address", "coordinator's service form", "catalogue detail"),
    ("resource_service.accessibility_ja", "coordinator's service form", "catalogue detail"),
    ("resource_organization.name_ja", "HSDS import", "catalogue detail"),
    ("resource_schedule.description_ja", "coordinator's service form", "catalogue detail"),
    ("resource_campaign.title_ja", "coordinator's campaign form", "campaign list, campaign, inbox"),
    ("resource_campaign.body_ja", "coordinator's campaign form", "campaign page, preview, inbox message"),
    ("screening_rule_set.title", "steward's rule-set form", "rule sets, rule set page"),
    ("screening_rule_set.review_note", "rule-set reject/approve note", "rule set page"),
    ("screening_flag.manual_text", "teacher's manual flag form", "screening child page, case"),
    ("survey_response.free_text", "student check-in / family questionnaire free text", "staff check-in child page"),
    ("survey_help_alert.ack_note", "alert acknowledgement form", "alerts page"),
    ("survey_closed_day.reason", "closed-days form", "closed-days page"),
    ("casework_assessment.notes", "teacher's assessment form", "case page"),
    ("casework_assessment.child_voice", "teacher's assessment form", "case page"),
    ("casework_assessment.attendance_note", "teacher's assessment form", "case page"),
    ("casework_assessment.family_contact_note", "teacher's assessment form", "case page"),
    ("casework_meeting.other_attendees", "case-meeting form", "meeting page"),
    ("casework_meeting_item.decision_note", "case-meeting decision form", "meeting page, case page"),
    ("casework_referral.reason", "referral form", "case page, counsellor's referrals"),
    ("casework_plan_goal.text", "support-plan form", "plan page, case page"),
    ("casework_plan_action.text", "support-plan form", "plan page, tasks"),
    ("consent_document.title", "steward's purpose form", "consent pages (family, student, public)"),
    ("consent_document.body", "steward's purpose form", "consent pages (family, student, public)"),
    ("consent_document.child_body", "steward's purpose form", "student consent page"),
    ("data_request.details", "family's data-request form", "family requests, steward's request page"),
    ("data_request.outcome", "steward's answer form", "family requests, steward's request page"),
    ("linkage_batch.filename", "admin-file upload (file name)", "linkage imports, batch page"),
]

# Stored as JSON by the service: poisoned in the same shape, so the page really shows it.
SHAPE = {"survey_response.free_text": lambda p: json.dumps({"free": p})}
# Poisoned (so a live rendering would still fail the test) but not required to be seen:
# the demo has no page state that shows them to the crawl. Covered by the form tests below.
NOT_REACHED = {"survey_help_alert.ack_note", "survey_closed_day.reason"}

DEMO_STAFF = ["teacher", "lead", "lead-jh", "counsellor", "ssw", "coordinator", "steward", "analyst", "admin"]
MAX_PER_ENDPOINT = 10
HREF = re.compile(r'href="(/[^"#]*)"')
SKIP_ENDPOINTS = {"auth.sign_out", "auth.set_language"}


def _tag(i: int) -> str:
    return f"xq{i:02d}z"


def _poison(session) -> None:
    meta = db.metadata
    for i, (col, _how, _where) in enumerate(STORED):
        table_name, column_name = col.split(".")
        table = meta.tables[table_name]
        column = table.c[column_name]
        room = getattr(column.type, "length", None)
        value = payload(_tag(i), None if room is None else room - 3)
        value = SHAPE.get(col, lambda p: p)(value)
        unique = any(column_name in {c.name for c in u.columns} for u in table.constraints
                     if isinstance(u, UniqueConstraint)) or column.unique
        if unique:  # keep rows distinct: the row id after the payload
            session.execute(update(table).values({column_name: literal(value) + cast(table.c.id, String)}))
        else:
            session.execute(update(table).values({column_name: value}))
    session.flush()


def _demo_people(session, ctx):
    from portal.people.models import Child, Guardian, GuardianChild
    from surveys.models import SurveyResponse

    people = {key: ctx.staff[key] for key in DEMO_STAFF}
    student_id = session.scalar(
        select(SurveyResponse.respondent_id).where(SurveyResponse.respondent_kind == "student").limit(1)
    )
    people["student"] = session.get(Child, student_id)
    guardian_id = session.scalar(select(GuardianChild.guardian_id).where(GuardianChild.child_id == student_id))
    people["guardian"] = session.get(Guardian, guardian_id)
    people["anonymous"] = None
    return people


def _crawl(app, who, role: str, table: dict) -> tuple[dict[str, list[str]], set[str], list[str], int]:
    """Visit every page reachable as this role. Returns (live injections by URL, texts seen, server errors, fetches)."""
    c = app.test_client()
    if who is not None:
        sign_in_as(c, who)
    adapter = app.url_map.bind("localhost")
    queue = [
        r.rule for r in routes(app)
        if not r.arguments and "GET" in r.methods and role in table.get(r.endpoint, ()) and r.endpoint not in SKIP_ENDPOINTS
    ]
    seen_urls: set[str] = set()
    per_endpoint: dict[str, int] = {}
    live: dict[str, list[str]] = {}
    texts: list[str] = []
    errors: list[str] = []
    fetches = 0
    while queue:
        url = queue.pop(0)
        if url in seen_urls:
            continue
        seen_urls.add(url)
        try:
            endpoint, _args = adapter.match(urlsplit(url).path, method="GET")
        except Exception:  # noqa: S112 (a link to something that is not a GET route)
            continue
        if endpoint in SKIP_ENDPOINTS or endpoint == "static" or endpoint.endswith(".static"):
            continue
        if per_endpoint.get(endpoint, 0) >= MAX_PER_ENDPOINT:
            continue
        per_endpoint[endpoint] = per_endpoint.get(endpoint, 0) + 1
        fetches += 1
        resp = c.get(url)
        if resp.status_code >= 500:
            errors.append(f"{role} GET {url}: {resp.status_code}")
            continue
        ctype = resp.headers.get("Content-Type", "")
        if not ctype.startswith("text/html"):
            continue
        body = resp.get_data(as_text=True)
        s = scan(body)
        if s.live:
            live[url] = s.live
        texts.extend(s.text)
        for href in HREF.findall(body):
            href = htmllib.unescape(href)
            if href not in seen_urls:
                queue.append(href)
    return live, set(texts), errors, fetches


def test_stored_text_is_shown_escaped_on_every_page(app, session):
    from consent.models import RequestKind
    from consent.rights import create_request
    from portal import demo
    from portal.auth.service import principal_for

    ctx = demo.load(session, app.config["SECRET_KEY"], children_per_class=2)
    people = _demo_people(session, ctx)
    # The demo has no data request yet: the guardian makes one, through the service.
    child_id = people["student"].id
    create_request(session, principal_for(people["guardian"]), child_id, RequestKind.correction, details="x")
    _poison(session)
    session.commit()

    table = expected_table()
    from tests.security.test_csrf import GET_MAY_WRITE, table_counts

    counts_before = table_counts()
    all_live: dict[str, list[str]] = {}
    all_errors: list[str] = []
    texts: set[str] = set()
    fetched = 0
    for key, who in people.items():
        role = who.role.value if hasattr(who, "role") else key
        live, seen, errors, n = _crawl(app, who, role, table)
        fetched += n
        all_live.update({f"{role} {u}": v for u, v in live.items()})
        all_errors.extend(errors)
        texts |= seen
    assert not all_live, "live injected markup:\n" + "\n".join(f"{u}: {v}" for u, v in all_live.items())
    assert not all_errors, "\n".join(all_errors)
    never_shown = [col for i, (col, _h, _w) in enumerate(STORED)
                   if col not in NOT_REACHED and not any(_tag(i) in t for t in texts)]
    assert not never_shown, f"fields never shown on any page (fix the table): {never_shown}"
    assert fetched >= 400, f"the crawl reached only {fetched} pages"
    # Reading pages changes nothing but the audit log (CSRF by a link or an <img> does nothing).
    session.expire_all()
    counts_after = table_counts()
    changed = {t: (counts_before[t], counts_after[t]) for t in counts_before
               if counts_before[t] != counts_after[t] and t not in GET_MAY_WRITE}
    assert not changed, f"GET requests changed tables: {changed}"
    if os.environ.get("MIMAMORI_SECURITY_FIGURES"):
        print(f"\nstored_xss fields={len(STORED)} identities={len(people)} pages={fetched}")


# -- through the real forms ---------------------------------------------------------------


def _form_world(make, session):
    from consent.testing import ensure_purposes, give_consent

    ensure_purposes(session)
    teacher, cls = make.teacher_with_class(grade=5)
    child = make.child(cls)
    guardian = make.guardian(child)
    give_consent(session, child, "data_linkage", "wellbeing_survey")
    people = {
        "teacher": teacher,
        "lead": make.staff("school_lead", schools=[session.get(type(cls), cls.id).school]),
        "steward": make.staff("data_steward"),
        "admin": make.staff("administrator"),
        "guardian": guardian,
    }
    session.commit()
    return people, child, cls


def _next_weekday() -> str:
    """A school day ahead (closed days are listed from today on)."""
    from datetime import date, timedelta

    d = date.today() + timedelta(days=30)
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d.isoformat()


# (who writes, form page, field data, then: (who reads, page) ...). "{P}" is the payload.
FORM_WRITES = [
    ("admin", "/staff/admin/staff/new",
     lambda w: {"name": "{P}", "email": "xss@example.invalid", "role": "teacher", "locale": "ja",
                "schools": [str(w["cls"].school_id)]},
     [("admin", "/staff/admin/staff")]),
    ("guardian", "/family/requests",
     lambda w: {"child_id": str(w["child"].id), "kind": "correction", "purpose": "", "details": "{P}"},
     [("guardian", "/family/requests"), ("steward", "/staff/consent/requests"),
      ("steward", "/staff/consent/requests/{request_id}")]),
    ("lead", "/staff/surveys/closed-days",
     lambda w: {"school_id": str(w["cls"].school_id), "start": _next_weekday(), "end": _next_weekday(), "reason": "{P}"},
     [("lead", "/staff/surveys/closed-days?school_id={school_id}")]),
    ("teacher", "/staff/screening/child/{child_id}",
     lambda w: {"reason": "{P}", "urgency": "2"},
     [("teacher", "/staff/screening/child/{child_id}"), ("lead", "/staff/screening/child/{child_id}")]),
]


@pytest.mark.parametrize("n", range(len(FORM_WRITES)))
def test_text_written_through_the_forms_is_shown_escaped(app, make, session, post_form, n):
    from tests.conftest import csrf_token_from

    people, child, cls = _form_world(make, session)
    who, page, data, shown = FORM_WRITES[n]
    tag = f"xq9{n}z"
    fmt = {"child_id": child.id, "school_id": cls.school_id}
    values = {k: (v.replace("{P}", payload(tag)) if isinstance(v, str) else v)
              for k, v in data({"child": child, "cls": cls}).items()}
    c = app.test_client()
    sign_in_as(c, people[who])
    url = page.format(**fmt)
    token = csrf_token_from(c.get(url).get_data(as_text=True))
    resp = c.post(url, data={"csrf_token": token, **values}, follow_redirects=True)
    assert resp.status_code == 200, resp.status_code
    from consent.models import DataRequest

    fmt["request_id"] = session.scalar(select(DataRequest.id)) or 0
    s = scan(resp.get_data(as_text=True))
    assert not s.live, s.live
    for reader, where in shown:
        rc = app.test_client()
        sign_in_as(rc, people[reader])
        html = rc.get(where.format(**fmt), follow_redirects=True).get_data(as_text=True)
        s = scan(html)
        assert not s.live, (where, s.live)
    # The last page of each row is where the text is meant to be read.
    assert s.seen(tag), f"{where} does not show what was written"


# -- reflected ----------------------------------------------------------------------------

# Every query parameter a view reads (grep request.args / Form(request.args) in the views).
QUERY_PARAMS = ["q", "next", "page", "role", "status", "action", "child_id", "actor_id", "since", "until",
                "school", "show", "class_id", "all", "school_id", "category", "age", "district", "language",
                "free", "lang", "service", "step", "t"]


def reflected_cases(app):
    table = expected_table()
    cases = []
    for rule in routes(app):
        if "GET" not in rule.methods:
            continue
        for role in sorted(table.get(rule.endpoint, ())):
            cases.append((rule, role))
    return cases


@pytest.mark.parametrize("role", ["anonymous", "guardian", "student", "teacher", "school_lead", "counsellor",
                                  "social_worker", "coordinator", "data_steward", "analyst", "administrator"])
def test_query_parameters_are_echoed_escaped(app, make, session, role):
    who = _principal_for_role(make, role)
    session.commit()
    failures = []
    checked = 0
    for rule, allowed in reflected_cases(app):
        if allowed != role or rule.endpoint in SKIP_ENDPOINTS:
            continue
        values = {}
        for arg in rule.arguments:
            conv = type(rule._converters.get(arg)).__name__
            values[arg] = 1 if conv == "IntegerConverter" else payload("xr0z")
        path = rule.build(values, append_unknown=False)[1]
        query = "&".join(f"{p}={quote(payload('xr1z'))}" for p in QUERY_PARAMS)
        c = app.test_client()
        if who is not None:
            sign_in_as(c, who)
        resp = c.get(f"{path}?{query}")
        checked += len(QUERY_PARAMS) + sum(1 for a in rule.arguments if a in values and values[a] != 1)
        if resp.status_code >= 500:
            failures.append(f"GET {rule.rule}: {resp.status_code}")
            continue
        if resp.status_code in (301, 302, 303, 307, 308):
            location = resp.headers.get("Location", "")
            if location.lower().startswith(("javascript:", "//", "http://", "https://")) and "localhost" not in location:
                failures.append(f"GET {rule.rule}: redirects off-site to {location}")
            continue
        if resp.headers.get("Content-Type", "").startswith("text/html"):
            s = scan(resp.get_data(as_text=True))
            if s.live:
                failures.append(f"GET {rule.rule}: {s.live}")
    assert not failures, "\n".join(failures)
    if role != ANONYMOUS:
        assert checked > 0
