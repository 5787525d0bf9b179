"""The whole path in a real browser, in Japanese and in English: flag, assessment, meeting,
support plan, referral accepted by the counsellor, review, closure, and the dashboard counts change."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backoffice.screening.models import Flag, FlagSource
from consent.testing import give_consent
from portal.people.models import Role
from tests.backoffice.casework.conftest import future
from tests.conftest import browser_sign_in_staff

pytestmark = pytest.mark.browser

# What a person reads and clicks on the way, in each language.
WORDS = {
    "ja": {
        "assess": "見立てを記入", "save_assessment": "見立てを保存", "assessment_saved": "見立てを保存しました",
        "create_meeting": "委員会を作成", "save_attendees": "出席者を保存", "list_case": "委員会の議題に加える",
        "support_needed": "支援が必要", "record_decision": "決定を記録する",
        "decision_recorded": "決定を記録し、担任に知らせました", "teacher_told": "校内委員会が決定しました",
        "plan_link": "支援計画", "save_plan": "支援計画を保存", "plan_saved": "支援計画を保存しました",
        "action_due": "取り組みの期限",
        "make_referral": "つなぐ", "send_referral": "つなぎを依頼する", "referral_made": "つなぎを依頼しました",
        "accept": "受け入れる", "answer_recorded": "回答を記録しました", "accepted": "受け入れ済み",
        "start_review": "見直しを始める", "under_review": "見直し中", "close": "ケースを終了する", "closed": "終了",
        "history": ("ケース開始", "見立てを記録", "校内委員会の決定", "支援計画を作成", "つなぎを受け入れ",
                    "見直しを開始", "ケース終了"),
    },
    "en": {
        "assess": "Assess", "save_assessment": "Save the assessment", "assessment_saved": "The assessment was saved",
        "create_meeting": "Create the meeting", "save_attendees": "Save attendees", "list_case": "Add to the meeting",
        "support_needed": "Support needed", "record_decision": "Record the decision",
        "decision_recorded": "The decision was recorded and the teacher was told",
        "teacher_told": "The school decided on a case of your class",
        "plan_link": "Support plan", "save_plan": "Save the plan", "plan_saved": "The support plan was saved",
        "action_due": "Action due",
        "make_referral": "Make a referral", "send_referral": "Make the referral", "referral_made": "The referral was made",
        "accept": "Accept", "answer_recorded": "Your answer was recorded", "accepted": "Accepted",
        "start_review": "Start the review", "under_review": "Under review", "close": "Close the case",
        "closed": "Closed",
        "history": ("Case opened", "Assessment recorded", "School decision", "Support plan made", "Referral accepted",
                    "Review started", "Case closed"),
    },
}


def _counts(page) -> dict[str, str]:
    page.goto("/staff/cases/dashboard")
    return {k: page.locator(f"#{k}").inner_text() for k in
            ("count-open", "status-assessed", "status-plan_active", "status-closed")}


def _walk(session, make, new_page, locale: str) -> None:
    w = WORDS[locale]
    school = make.school(name="見守り市立ひだまり小学校")
    teacher, cls = make.teacher_with_class(3, school=school)
    lead = make.staff(Role.school_lead, schools=[school], name="校長 見守")
    counsellor = make.staff(Role.counsellor, schools=[school], name="相談 心")
    for person in (teacher, lead, counsellor):
        person.locale = locale
    child = make.child(cls, name="日向 葵")
    make.guardian(child)
    give_consent(session, child, "data_linkage")
    session.add(Flag(child_id=child.id, source=FlagSource.rule, reason_key="rule:absence", rule_code="absence",
                     reasons=[{"indicator": "absence_days_3m", "fact": 12, "params": {"op": ">=", "value": 10}}],
                     urgency=3, needs_linkage=True))
    session.commit()

    # The teacher sees the child in the queue, with the reason, and assesses.
    t = new_page()
    browser_sign_in_staff(t, teacher.email)
    t.goto("/staff/cases/queue")
    assert t.locator("html").get_attribute("lang") == locale
    card = t.locator("li.card", has_text="日向 葵")
    assert "12" in card.inner_text()
    card.get_by_role("button", name=w["assess"]).click()
    t.select_option("#attendance", "serious")
    t.fill("#attendance_note", "月曜日の欠席が続いている")
    t.fill("#child_voice", "朝、おなかが痛くなる")
    t.check("#proposal-0")
    t.get_by_role("button", name=w["save_assessment"]).click()
    expect(t.locator("body")).to_contain_text(w["assessment_saved"])

    # The school lead: the dashboard before, then the case meeting.
    lp = new_page()
    browser_sign_in_staff(lp, lead.email)
    before = _counts(lp)
    assert before["status-assessed"] == "1" and before["count-open"] == "1"
    lp.goto("/staff/cases/meetings")
    lp.get_by_role("button", name=w["create_meeting"]).click()
    lp.get_by_label("校長 見守").check()
    lp.get_by_label("相談 心").check()
    lp.get_by_role("button", name=w["save_attendees"]).click()
    lp.get_by_role("button", name=w["list_case"]).click()
    item = lp.locator("section.cw-item", has_text="日向 葵")
    assert w["support_needed"] in item.inner_text()
    item.locator("select").first.select_option("support_plan")
    item.get_by_role("button", name=w["record_decision"]).click()
    expect(lp.locator("body")).to_contain_text(w["decision_recorded"])

    # The teacher is told.
    t.goto("/staff/cases/notices")
    expect(t.locator("body")).to_contain_text(w["teacher_told"])

    # The counsellor makes the support plan; its action is the teacher's task.
    cp = new_page()
    browser_sign_in_staff(cp, counsellor.email)
    cp.goto("/staff/cases/")
    cp.get_by_role("link", name="日向 葵").click()
    cp.get_by_role("link", name=w["plan_link"]).click()
    cp.fill("#goals", "安心して登校できる")
    cp.fill("#actions-0-text", "家庭訪問")
    cp.select_option("#actions-0-owner_id", str(teacher.id))
    cp.fill("#actions-0-due_on", future(7).isoformat())
    cp.fill("#review_date", future(30).isoformat())
    cp.get_by_role("button", name=w["save_plan"]).click()
    expect(cp.locator("body")).to_contain_text(w["plan_saved"])
    case_url = cp.url
    t.goto("/staff/cases/tasks")
    mine = t.locator("table.cw-tasks").first
    expect(mine).to_contain_text(w["action_due"])
    expect(mine).to_contain_text("日向 葵")

    # The lead refers the child to the counsellor.
    lp.goto(case_url)
    lp.locator("details summary", has_text=w["make_referral"]).click()
    lp.select_option("#ref-target", "counsellor")
    lp.select_option("#ref-receiver_id", str(counsellor.id))
    lp.fill("#ref-reason", "面談をお願いします")
    lp.get_by_role("button", name=w["send_referral"]).click()
    expect(lp.locator("body")).to_contain_text(w["referral_made"])

    # The counsellor accepts it.
    cp.goto("/staff/cases/referrals")
    cp.get_by_role("link", name="日向 葵").click()
    cp.get_by_role("button", name=w["accept"]).click()
    expect(cp.locator("body")).to_contain_text(w["answer_recorded"])
    expect(cp.locator("table.cw-referrals")).to_contain_text(w["accepted"])

    # The lead reviews and closes the case.
    lp.goto(case_url)
    lp.get_by_role("button", name=w["start_review"]).click()
    expect(lp.locator("h1")).to_contain_text(w["under_review"])
    lp.select_option("#close-reason", "support_complete")
    lp.fill("#close-note", "登校が安定した")
    lp.get_by_role("button", name=w["close"]).click()
    expect(lp.locator("h1")).to_contain_text(w["closed"])
    history = lp.locator("ol.cw-history").inner_text()
    for step in w["history"]:
        assert step in history

    after = _counts(lp)
    assert after["count-open"] == "0" and after["status-closed"] == "1" and after["status-assessed"] == "0"


def test_whole_path_in_japanese(session, make, new_page):
    _walk(session, make, new_page, "ja")


def test_whole_path_in_english(session, make, new_page):
    _walk(session, make, new_page, "en")


@pytest.mark.parametrize("locale,words", [
    ("ja", {"register": "ケース台帳", "show": "表示", "cases_1": "ケース：1件", "municipality": "市全体のケース",
            "plan_active": "支援計画実施中"}),
    ("en", {"register": "Case register", "show": "Show", "cases_1": "Cases: 1", "municipality": "Cases in the municipality",
            "plan_active": "Plan active"}),
])
def test_register_and_municipality_counts(session, make, new_page, locale, words):
    """The lead filters the school's register by status; the coordinator sees counts per school, no names."""
    from backoffice.casework import service as cw
    from portal.auth.service import principal_for

    school = make.school(name="見守り市立あおば小学校")
    teacher, cls = make.teacher_with_class(3, school=school)
    lead = make.staff(Role.school_lead, schools=[school], locale=locale)
    coordinator = make.staff(Role.coordinator, locale=locale)
    names = ("青葉 一郎", "青葉 二郎")
    cases = []
    for name in names:
        child = make.child(cls, name=name)
        make.guardian(child)
        give_consent(session, child, "data_linkage")
        flag = Flag(child_id=child.id, source=FlagSource.rule, reason_key="rule:absence", rule_code="absence",
                    reasons=[{"indicator": "absence_days_3m", "fact": 11, "params": {"op": ">=", "value": 10}}],
                    urgency=2, needs_linkage=True)
        session.add(flag)
        session.flush()
        cases.append(cw.open_from_flag(session, principal_for(teacher), flag.id))
    p_lead, case = principal_for(lead), cases[0]
    cw.assess(session, principal_for(teacher), case.id, case.version, cw.AssessmentData(proposal="support_needed"))
    m = cw.create_meeting(session, p_lead, school.id, future(0))
    cw.list_case(session, p_lead, m.id, case.id)
    cw.decide(session, p_lead, m.id, case.id, case.version, "support_plan")
    cw.save_plan(session, p_lead, case.id, case.version, cw.PlanData(
        review_date=future(30), goals=["登校する"], actions=[cw.ActionData("家庭訪問", teacher.id, future(5))]))
    session.commit()

    lp = new_page()
    browser_sign_in_staff(lp, lead.email)
    lp.goto("/staff/cases/")
    expect(lp.locator("h1")).to_contain_text(words["register"])
    expect(lp.locator("table.cw-register")).to_contain_text(names[1])
    lp.select_option("#status", "plan_active")
    lp.get_by_role("button", name=words["show"]).click()
    expect(lp.locator("main")).to_contain_text(words["cases_1"])
    table = lp.locator("table.cw-register")
    expect(table).to_contain_text(names[0])
    expect(table).to_contain_text(words["plan_active"])
    expect(table).not_to_contain_text(names[1])

    cp = new_page()
    browser_sign_in_staff(cp, coordinator.email)
    cp.goto("/staff/cases/municipality")
    expect(cp.locator("h1")).to_contain_text(words["municipality"])
    row = cp.locator("tr", has_text="見守り市立あおば小学校")
    expect(row).to_contain_text("1")
    assert cp.locator("#count-open").inner_text() == "2"
    assert cp.locator("#status-plan_active").inner_text() == "1"
    assert cp.locator("#status-flagged").inner_text() == "1"
    assert names[0] not in cp.locator("main").inner_text()
