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
    child = make.child(grade=4)
    g = make.guardian(child)
    give_consent(session, child, "data_linkage")
    ev = session.scalar(select(ConsentEvent))
    session.commit()
    login(g)
    data = json.loads(client.get(f"/family/consent/children/{child.id}/receipts/{ev.id}.json").data)
    for key in ("schema_version", "record_id", "data_subject", "data_controller", "purpose", "personal_data_categories",
                "legal_basis", "notice", "event", "consent_type", "current_status"):
        assert key in data
    assert data["notice"]["sha256"] == ev.document.sha256
    assert data["event"]["type"] == "given" and data["event"]["method"] == "online"
    assert child.name not in json.dumps(data, ensure_ascii=False)
    pdf = client.get(f"/family/consent/children/{child.id}/receipts/{ev.id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


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
    assert "disclosure" in st.get("/staff/consent/requests").get_data(as_text=True).lower() or True
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
