"""The pages: scope (404 for others), bad input messages, conflicts, the path by HTTP."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from backoffice.casework import service as cw
from backoffice.casework.models import Case, CaseStatus, Referral
from tests.backoffice.casework.conftest import future


def _english(client):
    with client.session_transaction() as s:
        s["locale"] = "en"


def _set_locale(session, staff, locale):
    staff.locale = locale
    session.commit()


def test_queue_lists_flags_of_own_classes_only(session, world, flagged, login):
    flagged(world.cls, name="自分 一郎")
    flagged(world.other_cls, name="他人 二郎")
    session.commit()
    html = login(world.teacher).get("/staff/cases/queue").get_data(as_text=True)
    assert "自分 一郎" in html and "他人 二郎" not in html


def test_start_assessment_and_save_it(session, world, flagged, login, post_form):
    _set_locale(session, world.teacher, "en")
    child, flag = flagged(world.cls)
    session.commit()
    login(world.teacher)
    resp = post_form("/staff/cases/start", {"flag_id": flag.id}, page="/staff/cases/queue")
    assert resp.status_code == 302 and "/assessment" in resp.headers["Location"]
    case = session.scalar(select(Case).where(Case.flag_id == flag.id))
    url = f"/staff/cases/{case.id}/assessment"
    resp = post_form(url, {"version": case.version, "proposal": "support_needed", "attendance": "serious",
                           "attendance_note": "休みがち", "learning": "none", "health": "none",
                           "relationships": "some", "family_contact": "none"}, follow_redirects=True)
    assert resp.status_code == 200
    assert "The assessment was saved" in resp.get_data(as_text=True)
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.assessed


def test_case_of_another_class_is_404_for_a_teacher(session, world, flagged, login):
    child, flag = flagged(world.other_cls)
    case = cw.open_from_flag(session, world.p(world.other_teacher), flag.id)
    session.commit()
    c = login(world.teacher)
    assert c.get(f"/staff/cases/{case.id}").status_code == 404
    assert c.get(f"/staff/cases/{case.id}/assessment").status_code == 404


def test_stale_assessment_form_gets_a_clear_conflict(session, world, flagged, login, post_form):
    _set_locale(session, world.teacher, "en")
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    stale = case.version
    cw.assess(session, world.p(world.lead), case.id, case.version, cw.AssessmentData(proposal="support_needed"))
    session.commit()
    login(world.teacher)
    resp = post_form(f"/staff/cases/{case.id}/assessment", {"version": stale, "proposal": "no_concern",
                                                            "no_concern_reason": "大丈夫"})
    assert resp.status_code == 409
    assert "Somebody else changed this case" in resp.get_data(as_text=True)
    assert cw.latest_assessment(session, case.id).proposal.value == "support_needed"


def test_bad_assessment_input_is_explained_in_japanese(session, world, flagged, login, post_form):
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    session.commit()
    login(world.teacher)
    past = (cw.tokyo_today() - timedelta(days=3)).isoformat()
    resp = post_form(f"/staff/cases/{case.id}/assessment",
                     {"version": case.version, "proposal": "keep_watching", "review_date": past})
    assert resp.status_code == 400
    assert "過去" in resp.get_data(as_text=True)
    assert cw.latest_assessment(session, case.id) is None


def test_referral_without_consent_is_refused_with_the_reason(session, world, flagged, login, post_form):
    _set_locale(session, world.lead, "en")
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    cw.assess(session, world.p(world.teacher), case.id, case.version, cw.AssessmentData(proposal="support_needed"))
    m = cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    cw.list_case(session, world.p(world.lead), m.id, case.id)
    cw.decide(session, world.p(world.lead), m.id, case.id, case.version, "support_plan")
    session.commit()
    login(world.lead)
    resp = post_form(f"/staff/cases/{case.id}/referrals", {"ref-target": "family_support_centre", "ref-receiver_id": 0,
                                                           "ref-service_id": 0}, page=f"/staff/cases/{case.id}")
    assert resp.status_code == 400
    assert "has not consented to sharing with partners" in resp.get_data(as_text=True)
    assert session.scalar(select(Referral.id)) is None


def test_decision_on_a_closed_case_by_http(session, world, flagged, login, post_form):
    _set_locale(session, world.lead, "en")
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    m = cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    cw.list_case(session, world.p(world.lead), m.id, case.id)
    version = case.version
    cw.close_case(session, world.p(world.lead), case.id, case.version, "moved_away")
    session.commit()
    login(world.lead)
    resp = post_form(f"/staff/cases/meetings/{m.id}/decide",
                     {"case_id": case.id, f"d{case.id}-version": version, f"d{case.id}-decision": "support_plan"},
                     page=f"/staff/cases/meetings/{m.id}", follow_redirects=True)
    assert "This case is closed" in resp.get_data(as_text=True)
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.closed


def test_plan_with_a_past_due_date_is_refused_by_http(session, world, flagged, login, post_form):
    _set_locale(session, world.counsellor, "en")
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    m = cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    cw.list_case(session, world.p(world.lead), m.id, case.id)
    cw.decide(session, world.p(world.lead), m.id, case.id, case.version, "support_plan")
    session.commit()
    login(world.counsellor)
    past = (cw.tokyo_today() - timedelta(days=1)).isoformat()
    resp = post_form(f"/staff/cases/{case.id}/plan", {
        "version": case.version, "goals": "登校する", "review_date": future(30).isoformat(),
        "actions-0-text": "家庭訪問", "actions-0-owner_id": world.teacher.id, "actions-0-due_on": past})
    assert resp.status_code == 400
    assert "This date is in the past" in resp.get_data(as_text=True)
    assert cw.get_plan(session, case.id) is None


def test_pages_render_for_each_role(session, make, world, flagged, login):
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    coordinator = make.staff("coordinator")
    session.commit()
    for who, urls in [
        (world.teacher, ["/staff/cases/queue", "/staff/cases/", "/staff/cases/tasks", "/staff/cases/notices",
                         f"/staff/cases/{case.id}", "/staff/cases/dashboard"]),
        (world.lead, ["/staff/cases/meetings", "/staff/cases/dashboard", "/staff/cases/tasks", "/staff/cases/queue"]),
        (world.counsellor, ["/staff/cases/referrals", f"/staff/cases/{case.id}"]),
        (coordinator, ["/staff/cases/municipality", "/staff/cases/municipality.csv"]),
    ]:
        c = login(who)
        for url in urls:
            assert c.get(url).status_code == 200, (who.role, url)


def test_help_requests_show_in_the_queue_and_open_a_case(session, world, login, post_form, make):
    from surveys.models import AlertReason, HelpAlert

    child = make.child(world.cls, name="相談 希望")
    alert = HelpAlert(child_id=child.id, school_id=world.school.id, class_id=world.cls.id,
                      reason=AlertReason.talk_request)
    session.add(alert)
    session.commit()
    login(world.teacher)
    html = login(world.teacher).get("/staff/cases/queue").get_data(as_text=True)
    assert "相談 希望" in html and "助けを求めています" in html
    assert 'href="/staff/alerts"' in html  # where the teacher records what was done
    resp = post_form("/staff/cases/start", {"alert_id": alert.id}, page="/staff/cases/queue")
    assert resp.status_code == 302
    case = session.scalar(select(Case).where(Case.child_id == child.id))
    assert case.source.value == "alert" and not case.uses_survey  # not consent-based


def test_notices_are_listed_and_marked_read(session, world, flagged, login, post_form):
    from backoffice.casework.models import Notice

    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    m = cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    cw.list_case(session, world.p(world.lead), m.id, case.id)
    cw.decide(session, world.p(world.lead), m.id, case.id, case.version, "keep_watching", review_date=future(14))
    session.commit()
    login(world.teacher)
    html = login(world.teacher).get("/staff/cases/notices").get_data(as_text=True)
    assert "見守りを続ける" in html
    post_form("/staff/cases/notices/read", {}, page="/staff/cases/notices")
    assert session.scalar(select(Notice.read_at).where(Notice.staff_id == world.teacher.id)) is not None


def test_municipality_csv_has_counts_per_school_and_no_names(session, make, world, flagged, login):
    child, flag = flagged(world.cls, name="秘密 花子")
    cw.open_from_flag(session, world.p(world.teacher), flag.id)
    coordinator = make.staff("coordinator")
    session.commit()
    body = login(coordinator).get("/staff/cases/municipality.csv").get_data(as_text=True)
    assert world.school.name in body and "秘密" not in body
    assert body.splitlines()[0].lstrip("\ufeff").startswith("学校")


def test_stale_close_form_is_refused_with_a_conflict_message(session, world, flagged, login, post_form):
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    session.commit()
    login(world.lead)
    page = f"/staff/cases/{case.id}"
    html = login(world.lead).get(page).get_data(as_text=True)
    from tests.conftest import csrf_token_from

    token, stale = csrf_token_from(html), case.version
    cw.assess(session, world.p(world.teacher), case.id, case.version, cw.AssessmentData(proposal="support_needed"))
    session.commit()
    resp = login(world.lead).post(f"/staff/cases/{case.id}/close", data={
        "csrf_token": token, "close-version": stale, "close-reason": "moved_away"}, follow_redirects=True)
    assert "ほかの人がこのケースを変更しました" in resp.get_data(as_text=True)
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.assessed


def test_assessment_page_of_a_decided_case_sends_back_to_the_case(session, world, flagged, login):
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    m = cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    cw.list_case(session, world.p(world.lead), m.id, case.id)
    cw.decide(session, world.p(world.lead), m.id, case.id, case.version, "support_plan")
    session.commit()
    resp = login(world.teacher).get(f"/staff/cases/{case.id}/assessment")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/staff/cases/{case.id}")


def test_a_teacher_cannot_assess_or_open_a_case_for_a_child_outside_their_classes(session, world, flagged, login,
                                                                                 post_form):
    from backoffice.casework.models import Assessment, CaseEvent

    child, flag = flagged(world.other_cls)
    other_child, other_flag = flagged(world.other_cls)
    case = cw.open_from_flag(session, world.p(world.other_teacher), flag.id)
    session.commit()
    events = session.scalar(select(func.count()).select_from(CaseEvent))
    login(world.teacher)
    # A case of another class: the assessment page and its form answer 404, as if there were no such case.
    resp = post_form(f"/staff/cases/{case.id}/assessment", {"version": case.version, "proposal": "support_needed"},
                     page="/staff/cases/queue")
    assert resp.status_code == 404
    # A flag of another class cannot open a case either.
    resp = post_form("/staff/cases/start", {"flag_id": other_flag.id}, page="/staff/cases/queue")
    assert resp.status_code == 404
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Assessment)) == 0
    assert session.scalar(select(Case.id).where(Case.flag_id == other_flag.id)) is None
    assert session.scalar(select(func.count()).select_from(CaseEvent)) == events
    assert session.get(Case, case.id).status == CaseStatus.flagged


def test_assessment_page_of_a_closed_case_says_it_is_closed(session, world, flagged, login):
    _set_locale(session, world.teacher, "en")
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    cw.close_case(session, world.p(world.lead), case.id, case.version, "moved_away")
    session.commit()
    resp = login(world.teacher).get(f"/staff/cases/{case.id}/assessment", follow_redirects=True)
    assert "This case is closed. Reopen it before recording an assessment." in resp.get_data(as_text=True)


def test_stale_decision_form_gets_a_clear_conflict(session, world, flagged, login, post_form):
    _set_locale(session, world.lead, "en")
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    m = cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    cw.list_case(session, world.p(world.lead), m.id, case.id)
    stale = case.version
    cw.assess(session, world.p(world.teacher), case.id, case.version, cw.AssessmentData(proposal="no_concern",
                                                                                         no_concern_reason="元気"))
    session.commit()
    login(world.lead)
    resp = post_form(f"/staff/cases/meetings/{m.id}/decide",
                     {"case_id": case.id, f"d{case.id}-version": stale, f"d{case.id}-decision": "support_plan"},
                     page=f"/staff/cases/meetings/{m.id}", follow_redirects=True)
    assert "Somebody else changed this case" in resp.get_data(as_text=True)
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.assessed
    assert session.get(Case, case.id).decision is None


def test_decision_with_a_past_review_date_is_refused_by_http(session, world, flagged, login, post_form):
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    m = cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    cw.list_case(session, world.p(world.lead), m.id, case.id)
    session.commit()
    login(world.lead)
    past = (cw.tokyo_today() - timedelta(days=1)).isoformat()
    resp = post_form(f"/staff/cases/meetings/{m.id}/decide",
                     {"case_id": case.id, f"d{case.id}-version": case.version, f"d{case.id}-decision": "keep_watching",
                      f"d{case.id}-review_date": past},
                     page=f"/staff/cases/meetings/{m.id}", follow_redirects=True)
    assert "この日付は過去です" in resp.get_data(as_text=True)
    session.expire_all()
    assert session.get(Case, case.id).status == CaseStatus.flagged


def test_the_leads_task_page_lists_overdue_tasks_per_person(session, world, flagged, login):
    _set_locale(session, world.lead, "en")
    for _ in range(2):
        child, flag = flagged(world.cls, days_ago=30)  # assessment due two weeks ago: overdue
        cw.open_from_flag(session, world.p(world.teacher), flag.id)
    child, flag = flagged(world.other_cls, days_ago=30)
    cw.open_from_flag(session, world.p(world.other_teacher), flag.id)
    session.commit()
    html = login(world.lead).get("/staff/cases/tasks").get_data(as_text=True)
    table = html.split('class="cw-overdue-by-person"')[1].split("</table>")[0]
    rows = [r for r in table.split("<tr>")[2:]]
    assert world.teacher.name in rows[0] and "<td>2</td>" in rows[0]
    assert world.other_teacher.name in rows[1] and "<td>1</td>" in rows[1]
