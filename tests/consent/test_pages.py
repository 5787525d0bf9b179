"""The consent pages, through the test client."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import event, func, select

from consent import service
from consent.gate import is_consented
from consent.models import ConsentEvent, DataRequest
from consent.testing import ensure_purposes, give_consent
from portal.audit.models import AuditEvent
from tests.conftest import csrf_token_from


def _purpose_url(child, code="data_linkage"):
    return f"/family/consent/children/{child.id}/{code}"


def _form_values(html: str) -> dict:
    import re

    last = re.search(r'name="last_event"[^>]*value="([^"]*)"', html) or re.search(r'id="last_event"[^>]*value="([^"]*)"', html)
    action = re.search(r'name="action"[^>]*value="([^"]*)"', html) or re.search(r'id="action"[^>]*value="([^"]*)"', html)
    return {"csrf_token": csrf_token_from(html), "last_event": last.group(1) if last else "", "action": action.group(1)}


def test_guardian_grants_and_withdraws_on_the_same_page_in_the_same_steps(client, session, make, login):
    child = make.child(grade=4, name="見守 一花")
    g = make.guardian(child)
    ensure_purposes(session)
    session.commit()
    login(g)
    html = client.get(_purpose_url(child)).get_data(as_text=True)
    assert "行政データの連携" in html
    vals = _form_values(html)
    assert vals["action"] == "grant"
    resp = client.post(_purpose_url(child), data={**vals, "confirm": "y"})
    assert resp.status_code == 302
    assert is_consented(session, child.id, "data_linkage")
    html = client.get(_purpose_url(child)).get_data(as_text=True)
    vals = _form_values(html)
    assert vals["action"] == "withdraw"
    client.post(_purpose_url(child), data={**vals, "confirm": "y"})
    assert not is_consented(session, child.id, "data_linkage")
    hist = client.get(f"/family/consent/children/{child.id}/history").get_data(as_text=True)
    assert hist.count("receipts/") == 4  # PDF and JSON for each of the two events


def test_unticked_confirmation_is_a_clear_message(client, session, make, login):
    child = make.child(grade=4)
    g = make.guardian(child, locale="en")
    ensure_purposes(session)
    session.commit()
    login(g)
    vals = _form_values(client.get(_purpose_url(child)).get_data(as_text=True))
    resp = client.post(_purpose_url(child), data=vals)
    assert resp.status_code == 422
    assert "Tick the box to confirm." in resp.get_data(as_text=True)
    assert session.scalar(select(func.count(ConsentEvent.id))) == 0


def test_double_submitted_form_records_once_and_says_so(client, session, make, login):
    child = make.child(grade=4)
    g = make.guardian(child, locale="en")
    ensure_purposes(session)
    session.commit()
    login(g)
    vals = _form_values(client.get(_purpose_url(child)).get_data(as_text=True))
    client.post(_purpose_url(child), data={**vals, "confirm": "y"})
    resp = client.post(_purpose_url(child), data={**vals, "confirm": "y"}, follow_redirects=True)
    assert "This was already recorded." in resp.get_data(as_text=True)
    assert session.scalar(select(func.count(ConsentEvent.id))) == 1


def test_second_guardian_withdrawing_while_the_first_grants_sees_a_message(app, session, make, login):
    child = make.child(grade=4)
    g1, g2 = make.guardian(child, locale="en"), make.guardian(child, locale="en")
    ensure_purposes(session)
    session.commit()
    c1, c2 = login(g1, app.test_client()), login(g2, app.test_client())
    v1 = _form_values(c1.get(_purpose_url(child)).get_data(as_text=True))
    v2 = _form_values(c2.get(_purpose_url(child)).get_data(as_text=True))
    c1.post(_purpose_url(child), data={**v1, "confirm": "y"})
    # g2 had opened the page before; they submit a grant too: already recorded.
    resp = c2.post(_purpose_url(child), data={**v2, "confirm": "y"}, follow_redirects=True)
    assert "already recorded" in resp.get_data(as_text=True)
    # g2 reloads and withdraws, while g1 (stale page showing "withdraw") ... g1 withdraws too:
    v2 = _form_values(c2.get(_purpose_url(child)).get_data(as_text=True))
    c2.post(_purpose_url(child), data={**v2, "confirm": "y"})
    v1_stale = {**v1, "action": "grant"}
    resp = c1.post(_purpose_url(child), data={**v1_stale, "confirm": "y"}, follow_redirects=True)
    assert "changed this consent while you were reading" in resp.get_data(as_text=True)
    assert not is_consented(session, child.id, "data_linkage")
    assert session.scalar(select(func.count(ConsentEvent.id))) == 2


def test_another_familys_child_by_url_is_not_found_and_nothing_is_written(client, session, make, login):
    child, other = make.child(), make.child(name="別家 二郎")
    g = make.guardian(child)
    make.guardian(other)
    ensure_purposes(session)
    give_consent(session, other, "data_linkage")
    ev = session.scalar(select(ConsentEvent))
    session.commit()
    login(g)
    for url in (_purpose_url(other), f"/family/consent/children/{other.id}/history",
                f"/family/consent/children/{other.id}/receipts/{ev.id}.pdf",
                f"/family/consent/children/{other.id}/access",
                f"/family/consent/children/{child.id}/receipts/{ev.id}.json"):
        resp = client.get(url)
        assert resp.status_code == 404, url
        assert "別家" not in resp.get_data(as_text=True)
    html = client.get(_purpose_url(child)).get_data(as_text=True)
    resp = client.post(_purpose_url(other), data={**_form_values(html), "action": "withdraw", "confirm": "y"})
    assert resp.status_code == 404
    assert is_consented(session, other.id, "data_linkage")


def test_receipt_json_carries_ts_27560_fields_and_pdf_is_a_pdf(client, session, make, login):
    from consent.receipts import TS_27560_SECTIONS

    child = make.child(grade=4)
    g = make.guardian(child)
    give_consent(session, child, "data_linkage")
    ev = session.scalar(select(ConsentEvent))
    session.commit()
    login(g)
    data = json.loads(client.get(f"/family/consent/children/{child.id}/receipts/{ev.id}.json").data)
    assert set(TS_27560_SECTIONS) | {"schema_version", "receipt", "current_state"} <= set(data)
    header, processing = data["record_header"], data["pii_processing"]
    assert {"schema_version", "record_id", "pii_principal_id", "record_time"} <= set(header)
    assert {"purposes", "lawful_basis", "consent_type", "pii_controllers", "collection_method", "processing_method",
            "retention_period", "recipient_third_parties", "jurisdiction", "withdrawal_method", "privacy_notice",
            "language", "privacy_rights"} <= set(processing)
    assert processing["purposes"][0]["id"] == "data_linkage" and processing["lawful_basis"] == "consent"
    assert processing["privacy_notice"]["sha256"] == ev.document.sha256
    assert processing["privacy_notice"]["version"] == 1 and processing["language"] == "ja"
    assert {"pii_type": "給食費の滞納月数"} in data["pii_information"]
    parties = {p["party_type"] for p in data["party_identification"]}
    assert parties == {"pii_principal", "parent_or_guardian", "pii_controller"}
    event = data["event"][0]
    assert event["event_state"] == "given" and event["collection_channel"] == "online"
    assert data["current_state"] == "given"
    text = json.dumps(data, ensure_ascii=False)
    assert child.name not in text and child.student_no not in text and g.email not in text
    pdf = client.get(f"/family/consent/children/{child.id}/receipts/{ev.id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_material_version_where_old_consent_stands_asks_the_family_again(client, session, make, login):
    from consent.models import OldConsent
    from portal.auth.principal import SYSTEM

    child = make.child(grade=4)
    g = make.guardian(child, locale="en")
    give_consent(session, child, "data_linkage")
    p = service.purpose_by_code(session, "data_linkage")
    service.publish_version(session, SYSTEM, p, {"ja": ("題 v2", "本文 v2", ""), "en": ("Title v2", "Text v2", "")},
                            material=True, old_consent=OldConsent.stands)
    session.commit()
    login(g)
    home = client.get("/family/consent/").get_data(as_text=True)
    assert "In effect" in home and "New text: please read and decide again" in home
    html = client.get(_purpose_url(child)).get_data(as_text=True)
    assert "Your earlier consent stands until you decide again" in html and "Text v2" in html
    # Both decisions are offered, each one tick and one button.
    assert 'value="grant"' in html and 'value="withdraw"' in html
    assert html.count('type="checkbox"') == 2 and html.count('type="submit"') >= 2
    assert is_consented(session, child.id, "data_linkage")
    vals = _form_values(html)
    assert vals["action"] == "grant"
    client.post(_purpose_url(child), data={**vals, "confirm": "y"})
    session.expire_all()
    last = service.latest_event(session, child.id, p.id, service.Party.guardian)
    assert last.action.value == "grant" and last.version == 2
    html = client.get(_purpose_url(child)).get_data(as_text=True)
    assert 'value="grant"' not in html and "New text" not in html


def test_a_non_material_version_asks_nobody_again(client, session, make, login):
    from portal.auth.principal import SYSTEM

    child = make.child(grade=4)
    g = make.guardian(child, locale="en")
    give_consent(session, child, "data_linkage")
    p = service.purpose_by_code(session, "data_linkage")
    service.publish_version(session, SYSTEM, p, {"ja": ("題", "誤字を直した本文", "")}, material=False)
    session.commit()
    login(g)
    html = client.get(_purpose_url(child)).get_data(as_text=True)
    assert "New text" not in html and 'value="grant"' not in html and 'value="withdraw"' in html


def test_family_consent_page_queries_do_not_grow_with_children(app, session, make, login):
    from portal.extensions import db

    ensure_purposes(session)
    g = make.guardian(locale="en")

    def queries_with(n_children):
        for _ in range(n_children):
            c = make.child(grade=8)
            make.guardian(c)
            from portal.people.models import GuardianChild

            session.add(GuardianChild(guardian_id=g.id, child_id=c.id))
            session.flush()
            give_consent(session, c, "data_linkage")
        session.commit()
        client = login(g, app.test_client())
        seen = []

        def before(conn, cursor, statement, *a):
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            resp = client.get("/family/consent/")
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        assert resp.status_code == 200
        return len(seen), resp.get_data(as_text=True)

    one, _ = queries_with(1)
    three, html = queries_with(2)
    assert one == three
    assert html.count("In effect") == 3


def test_student_in_junior_high_decides_their_part(client, session, make, login):
    child = make.child(grade=8)
    make.guardian(child)
    ensure_purposes(session)
    session.commit()
    login(child)
    home = client.get("/student/consent/").get_data(as_text=True)
    assert "/student/consent/data_linkage" in home
    html = client.get("/student/consent/data_linkage").get_data(as_text=True)
    client.post("/student/consent/data_linkage", data={**_form_values(html), "confirm": "y"})
    ev = session.scalar(select(ConsentEvent))
    assert ev.party.value == "child" and ev.action.value == "grant"
    assert client.get(f"/student/consent/receipts/{ev.id}.pdf").data.startswith(b"%PDF")
    receipt = json.loads(client.get(f"/student/consent/receipts/{ev.id}.json").data)
    assert receipt["party_identification"][1]["party_type"] == "pii_principal"
    hist = client.get("/student/consent/history").get_data(as_text=True)
    assert f"/student/consent/receipts/{ev.id}.json" in hist
    # The same page withdraws, in the same steps.
    html = client.get("/student/consent/data_linkage").get_data(as_text=True)
    vals = _form_values(html)
    assert vals["action"] == "withdraw"
    client.post("/student/consent/data_linkage", data={**vals, "confirm": "y"})
    assert [e.action.value for e in service.history(session, child.id)] == ["withdraw", "grant"]


def test_a_student_cannot_open_another_childs_receipt(client, session, make, login):
    child, other = make.child(grade=8), make.child(grade=8)
    make.guardian(child), make.guardian(other)
    give_consent(session, other, "data_linkage")
    ev = session.scalar(select(ConsentEvent).where(ConsentEvent.child_id == other.id))
    session.commit()
    login(child)
    for fmt in ("pdf", "json"):
        assert client.get(f"/student/consent/receipts/{ev.id}.{fmt}").status_code == 404
    assert client.get("/student/consent/receipts/1.xml").status_code == 404


def test_elementary_student_has_nothing_to_decide(client, session, make, login):
    child = make.child(grade=5)
    ensure_purposes(session)
    session.commit()
    login(child)
    assert client.get("/student/consent/data_linkage").status_code == 404


def test_disclosure_request_answered_and_downloaded_with_access_log(app, session, make, login, post_form):
    child = make.child(grade=4)
    g = make.guardian(child, locale="en")
    steward = make.staff("data_steward", name="管理 守")
    teacher = make.staff("teacher", name="担任 先生")
    give_consent(session, child, "data_linkage")
    from portal.audit.service import record_child_read
    from portal.auth.principal import Principal

    record_child_read(session, Principal(kind="staff", id=teacher.id, role="teacher"), child.id, "flags")
    session.commit()
    fam = login(g, app.test_client())
    resp = post_form("/family/requests", {"child_id": child.id, "kind": "disclosure", "purpose": "", "details": ""}, c=fam)
    assert resp.status_code == 302
    req = session.scalar(select(DataRequest))
    assert (req.due_on - req.received_at.date()).days in (29, 30, 31)
    # A second identical request while the first is open: a clear message, nothing written.
    resp = post_form("/family/requests", {"child_id": child.id, "kind": "disclosure"}, c=fam)
    assert "already have an open request" in resp.get_data(as_text=True)
    assert session.scalar(select(func.count(DataRequest.id))) == 1

    st = login(steward, app.test_client())
    queue = st.get("/staff/consent/requests").get_data(as_text=True)
    assert f"/staff/consent/requests/{req.id}" in queue and "badge" in queue
    resp = post_form(f"/staff/consent/requests/{req.id}", {"status": "completed", "outcome": "Attached."}, c=st)
    assert resp.status_code == 302
    data = json.loads(fam.get(f"/family/requests/{req.id}/disclosure.json").data)
    roles = {r["role"] for r in data["access_log"]}
    assert {"teacher", "data_steward"} <= roles
    text = json.dumps(data, ensure_ascii=False)
    assert "担任 先生" not in text and "管理 守" not in text
    assert data["consent_history"][0]["purpose"] == "data_linkage"
    assert fam.get(f"/family/requests/{req.id}/disclosure.pdf").data.startswith(b"%PDF")


def test_correction_without_details_is_refused_with_a_message(app, session, make, login, post_form):
    child = make.child(grade=4)
    g = make.guardian(child, locale="en")
    ensure_purposes(session)
    session.commit()
    fam = login(g, app.test_client())
    resp = post_form("/family/requests", {"child_id": child.id, "kind": "correction", "details": " "}, c=fam)
    assert "Tell us what is wrong" in resp.get_data(as_text=True)
    assert session.scalar(select(func.count(DataRequest.id))) == 0


def test_stop_of_use_completed_withdraws_consent(app, session, make, login, post_form):
    child = make.child(grade=4)
    g = make.guardian(child)
    steward = make.staff("data_steward")
    give_consent(session, child, "wellbeing_survey")
    session.commit()
    fam = login(g, app.test_client())
    post_form("/family/requests", {"child_id": child.id, "kind": "stop_use", "purpose": "wellbeing_survey"}, c=fam)
    req = session.scalar(select(DataRequest))
    st = login(steward, app.test_client())
    post_form(f"/staff/consent/requests/{req.id}", {"status": "completed", "outcome": "停止しました。"}, c=st)
    assert not is_consented(session, child.id, "wellbeing_survey")


def test_overdue_requests_are_highlighted(app, session, make, login):
    from consent import rights
    from portal.auth.principal import Principal

    child = make.child(grade=4)
    g = make.guardian(child)
    steward = make.staff("data_steward", locale="en")
    req = rights.create_request(session, Principal(kind="guardian", id=g.id, role="guardian"), child.id, "disclosure")
    req.due_on = req.due_on - timedelta(days=40)
    session.commit()
    html = login(steward, app.test_client()).get("/staff/consent/requests").get_data(as_text=True)
    assert 'class="overdue"' in html and "Overdue by 10 days" in html


def test_coverage_page_uses_a_constant_number_of_queries(app, session, make, login):
    from portal.extensions import db

    coordinator = make.staff("coordinator", locale="en")
    ensure_purposes(session)

    def count_queries(n_children):
        for i in range(n_children):
            c = make.child(grade=3 + (i % 6))
            make.guardian(c)
            if i % 2:
                give_consent(session, c, "data_linkage")
        session.commit()
        client = login(coordinator, app.test_client())
        seen = []

        def before(conn, cursor, statement, *a):
            seen.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            resp = client.get("/staff/consent/coverage")
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        assert resp.status_code == 200
        return len(seen), resp.get_data(as_text=True)

    few, _html = count_queries(2)
    many, html = count_queries(12)
    assert few == many
    assert "Consent coverage" in html and "%" in html


def test_public_pages_need_no_sign_in(client, session):
    ensure_purposes(session)
    session.commit()
    html = client.get("/consent/purposes").get_data(as_text=True)
    assert "行政データの連携" in html and "出欠" in html
    html = client.get("/consent/register").get_data(as_text=True)
    assert "児童手当" in html


def test_paper_form_with_unknown_student_number_is_a_clear_message(app, session, make, login):
    steward = make.staff("data_steward", locale="en")
    ensure_purposes(session)
    session.commit()
    st = login(steward, app.test_client())
    html = st.get("/staff/consent/paper").get_data(as_text=True)
    token = csrf_token_from(html)
    resp = st.post("/staff/consent/paper", data={
        "one-csrf_token": token, "one-student_no": "NOPE1", "one-party": "guardian", "one-purpose": "data_linkage",
        "one-action": "grant", "one-signed_on": "2025-04-01", "one-form_no": "F9",
    })
    assert resp.status_code == 422
    assert "No child has the student number NOPE1" in resp.get_data(as_text=True)
    assert session.scalar(select(func.count(ConsentEvent.id))) == 0


def test_steward_publishes_a_lapsing_version(app, session, make, login, post_form):
    child = make.child(grade=4)
    make.guardian(child)
    steward = make.staff("data_steward")
    give_consent(session, child, "data_linkage")
    session.commit()
    st = login(steward, app.test_client())
    resp = post_form("/staff/consent/purposes/data_linkage/publish", {
        "title_ja": "新しい題", "body_ja": "新しい本文", "material": "y", "old_consent": "lapses", "confirm": "y"}, c=st)
    assert resp.status_code == 302
    assert not is_consented(session, child.id, "data_linkage")
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "consent.publish")) is not None
    p = service.purpose_by_code(session, "data_linkage")
    assert service.current_version(session, p.id).version == 2


def test_steward_defines_a_purpose_and_bad_codes_are_refused(app, session, make, login, post_form):
    steward = make.staff("data_steward", locale="en")
    ensure_purposes(session)
    session.commit()
    st = login(steward, app.test_client())
    data = {"code": "Bad Code!", "title_ja": "題", "summary_ja": "説明", "retention_days": "0", "child_from_grade": "7"}
    resp = post_form("/staff/consent/purposes/new", data, c=st)
    assert resp.status_code == 422 and "lower-case letters" in resp.get_data(as_text=True)
    resp = post_form("/staff/consent/purposes/new", {**data, "code": "data_linkage"}, c=st)
    assert "already exists" in resp.get_data(as_text=True)
    resp = post_form("/staff/consent/purposes/new", {**data, "code": "school_photos", "data_items_ja": "写真\n氏名\n",
                                                     "retention_days": "30", "child_from_grade": "5"}, c=st)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/staff/consent/purposes/school_photos/publish")
    p = service.purpose_by_code(session, "school_photos")
    assert p.data_items == {"ja": ["写真", "氏名"]} and p.retention_days == 30 and p.child_from_grade == 5
    resp = post_form("/staff/consent/purposes/school_photos/edit", {**data, "code": "ignored", "retention_days": "-1"}, c=st)
    assert resp.status_code == 422 and "Between 0 and 3650" in resp.get_data(as_text=True)


def test_disclosure_pdf_is_readable_and_keeps_every_kind_of_row(app, session, make):
    import io

    from flask_babel import force_locale
    from pypdf import PdfReader

    from consent import hooks, receipts, rights
    from portal.auth.principal import Principal

    child = make.child(grade=4)
    g = make.guardian(child)
    give_consent(session, child, "data_linkage")
    rights.create_request(session, Principal(kind="guardian", id=g.id, role="guardian"), child.id, "disclosure")

    def mixed(s, child_id):
        return [{"record": "answer", "score": 12, "below_threshold": False},
                {"record": "help_request", "reason": "talk_request", "acknowledged_at": None}]

    hooks.register_disclosure_section("tests.mixed", "Mixed section", mixed)
    try:
        data = rights.disclosure(session, Principal(kind="staff", id=make.staff("data_steward").id,
                                                    role="data_steward"), child.id)
        with app.test_request_context(), force_locale("en"):
            pdf = receipts.disclosure_pdf(data)
    finally:
        hooks._sections.pop("tests.mixed")
    text = "\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages)
    for expected in ("Mixed section", "Below the threshold", "Acknowledged at", "talk_request", "help_request",
                     "Requests about the data", "Consent history", "Who looked at the record"):
        assert expected in text, expected
    assert "below_threshold" not in text


def test_requests_about_another_familys_child_are_refused_and_nothing_is_written(app, session, make, login, post_form):
    from consent import rights
    from portal.auth.principal import Principal

    child, other = make.child(grade=4), make.child(grade=4)
    g = make.guardian(child, locale="en")
    og = make.guardian(other)
    steward = make.staff("data_steward")
    ensure_purposes(session)
    theirs = rights.create_request(session, Principal(kind="guardian", id=og.id, role="guardian"), other.id, "disclosure")
    rights.answer_request(session, Principal(kind="staff", id=steward.id, role="data_steward"), theirs,
                          status="completed", outcome="ok")
    session.commit()
    fam = login(g, app.test_client())
    resp = post_form("/family/requests", {"child_id": other.id, "kind": "disclosure"}, c=fam)
    assert resp.status_code == 422 and "Not a valid choice" in resp.get_data(as_text=True)
    assert session.scalar(select(func.count(DataRequest.id))) == 1
    for fmt in ("json", "pdf"):
        assert fam.get(f"/family/requests/{theirs.id}/disclosure.{fmt}").status_code == 404
    assert other.name not in fam.get("/family/requests").get_data(as_text=True)


def test_history_and_request_queue_queries_do_not_grow_with_rows(app, session, make, login, queries_for):
    from consent import rights
    from portal.auth.principal import Principal

    child = make.child(grade=8)
    g = make.guardian(child)
    steward = make.staff("data_steward")
    ensure_purposes(session)
    gp = Principal(kind="guardian", id=g.id, role="guardian")

    child_id = child.id

    def add_rows():
        from portal.people.models import Child

        kid = session.get(Child, child_id)
        give_consent(session, kid, "data_linkage", "wellbeing_survey", "share_with_partners")
        give_consent(session, kid, "data_linkage", "wellbeing_survey", "share_with_partners", withdraw=True)
        other = make.child(grade=4)
        og = make.guardian(other)
        rights.create_request(session, Principal(kind="guardian", id=og.id, role="guardian"), other.id, "disclosure")
        session.commit()

    fam, st = login(g, app.test_client()), login(steward, app.test_client())
    rights.create_request(session, gp, child.id, "disclosure")
    give_consent(session, child, "data_linkage")
    session.commit()
    child_id = child.id
    urls = [(fam, f"/family/consent/children/{child_id}/history"), (fam, "/family/requests"),
            (st, "/staff/consent/requests?show=all"), (st, "/staff/consent/"),
            (fam, f"/family/consent/children/{child.id}/access")]
    few = [queries_for(c, u) for c, u in urls]
    add_rows()
    many = [queries_for(c, u) for c, u in urls]
    assert few == many


def test_answering_a_request_twice_records_one_answer(app, session, make, login, post_form):
    from consent import rights
    from portal.auth.principal import Principal

    child = make.child(grade=4)
    g = make.guardian(child)
    steward = make.staff("data_steward", locale="en")
    req = rights.create_request(session, Principal(kind="guardian", id=g.id, role="guardian"), child.id, "correction",
                                details="住所が古いです")
    session.commit()
    st = login(steward, app.test_client())
    html = st.get(f"/staff/consent/requests/{req.id}").get_data(as_text=True)
    data = {"csrf_token": csrf_token_from(html), "status": "completed", "outcome": "住所を直しました。"}
    assert st.post(f"/staff/consent/requests/{req.id}", data=data).status_code == 302
    resp = st.post(f"/staff/consent/requests/{req.id}", data={**data, "status": "refused"}, follow_redirects=True)
    assert "already answered" in resp.get_data(as_text=True)
    session.expire_all()
    assert session.get(DataRequest, req.id).status.value == "completed"
    answers = session.scalars(select(AuditEvent).where(AuditEvent.action == "consent.request_answered")).all()
    assert len(answers) == 1
