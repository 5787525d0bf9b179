"""The whole path in a real browser, in Japanese: flag, assessment, meeting, support plan,
referral accepted by the counsellor, review, closure, and the dashboard counts change."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backoffice.screening.models import Flag, FlagSource
from consent.testing import give_consent
from portal.people.models import Role
from tests.backoffice.casework.conftest import future
from tests.conftest import browser_sign_in_staff

pytestmark = pytest.mark.browser


def _counts(page) -> dict[str, str]:
    page.goto("/staff/cases/dashboard")
    return {k: page.locator(f"#{k}").inner_text() for k in
            ("count-open", "status-assessed", "status-plan_active", "status-closed")}


def test_whole_path_in_japanese(session, make, new_page):
    school = make.school(name="見守り市立ひだまり小学校")
    teacher, cls = make.teacher_with_class(3, school=school)
    lead = make.staff(Role.school_lead, schools=[school], name="校長 見守")
    counsellor = make.staff(Role.counsellor, schools=[school], name="相談 心")
    child = make.child(cls, name="日向 葵")
    make.guardian(child)
    give_consent(session, child, "data_linkage")
    session.add(Flag(child_id=child.id, source=FlagSource.rule, reason_key="rule:absence", rule_code="absence",
                     reasons=[{"indicator": "absence_days_3m", "fact": 12, "params": {"op": ">=", "value": 10}}],
                     urgency=3, needs_linkage=True))
    session.commit()

    # The teacher sees the child in the queue and assesses.
    t = new_page()
    browser_sign_in_staff(t, teacher.email)
    t.goto("/staff/cases/queue")
    assert t.locator("html").get_attribute("lang") == "ja"
    card = t.locator("li.card", has_text="日向 葵")
    assert "12" in card.inner_text()
    card.get_by_role("button", name="見立てを記入").click()
    t.select_option("#attendance", "serious")
    t.fill("#attendance_note", "月曜日の欠席が続いている")
    t.fill("#child_voice", "朝、おなかが痛くなる")
    t.check("#proposal-0")
    t.get_by_role("button", name="見立てを保存").click()
    expect(t.locator("body")).to_contain_text("見立てを保存しました")
    # The school lead: dashboard before, then the case meeting.
    lp = new_page()
    browser_sign_in_staff(lp, lead.email)
    before = _counts(lp)
    assert before["status-assessed"] == "1" and before["count-open"] == "1"
    lp.goto("/staff/cases/meetings")
    lp.get_by_role("button", name="委員会を作成").click()
    lp.get_by_label("校長 見守").check()
    lp.get_by_label("相談 心").check()
    lp.get_by_role("button", name="出席者を保存").click()
    lp.get_by_role("button", name="委員会の議題に加える").click()
    item = lp.locator("section.cw-item", has_text="日向 葵")
    assert "支援が必要" in item.inner_text()
    item.locator("select").first.select_option("support_plan")
    item.get_by_role("button", name="決定を記録する").click()
    expect(lp.locator("body")).to_contain_text("決定を記録し、担任に知らせました")
    # The teacher is told.
    t.goto("/staff/cases/notices")
    expect(t.locator("body")).to_contain_text("校内委員会が決定しました")
    # The counsellor makes the support plan.
    cp = new_page()
    browser_sign_in_staff(cp, counsellor.email)
    cp.goto("/staff/cases/")
    cp.get_by_role("link", name="日向 葵").click()
    cp.get_by_role("link", name="支援計画").click()
    cp.fill("#goals", "安心して登校できる")
    cp.fill("#actions-0-text", "家庭訪問")
    cp.select_option("#actions-0-owner_id", str(teacher.id))
    cp.fill("#actions-0-due_on", future(7).isoformat())
    cp.fill("#review_date", future(30).isoformat())
    cp.get_by_role("button", name="支援計画を保存").click()
    expect(cp.locator("body")).to_contain_text("支援計画を保存しました")
    case_url = cp.url

    # The lead refers the child to the counsellor.
    lp.goto(case_url)
    lp.locator("details summary", has_text="つなぐ").click()
    lp.select_option("#ref-target", "counsellor")
    lp.select_option("#ref-receiver_id", str(counsellor.id))
    lp.fill("#ref-reason", "面談をお願いします")
    lp.get_by_role("button", name="つなぎを依頼する").click()
    expect(lp.locator("body")).to_contain_text("つなぎを依頼しました")
    # The counsellor accepts it.
    cp.goto("/staff/cases/referrals")
    cp.get_by_role("link", name="日向 葵").click()
    cp.get_by_role("button", name="受け入れる").click()
    expect(cp.locator("body")).to_contain_text("回答を記録しました")
    assert "受け入れ済み" in cp.locator("table.cw-referrals").inner_text()

    # The lead reviews and closes the case.
    lp.goto(case_url)
    lp.get_by_role("button", name="見直しを始める").click()
    expect(lp.locator("h1")).to_contain_text("見直し中")
    lp.select_option("#close-reason", "support_complete")
    lp.fill("#close-note", "登校が安定した")
    lp.get_by_role("button", name="ケースを終了する").click()
    expect(lp.locator("h1")).to_contain_text("終了")
    history = lp.locator("ol.cw-history").inner_text()
    for step in ("ケース開始", "見立てを記録", "校内委員会の決定", "支援計画を作成", "つなぎを受け入れ", "見直しを開始", "ケース終了"):
        assert step in history

    after = _counts(lp)
    assert after["count-open"] == "0" and after["status-closed"] == "1" and after["status-assessed"] == "0"
