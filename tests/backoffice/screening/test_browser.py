"""Done-when: the steward drafts a rule, a second role approves it, a run flags a child,
the teacher sees the reasons in Japanese and English. Also the child page (a flag raised
by hand, a decision recorded) and the evaluation page, in both languages."""

from __future__ import annotations

from datetime import date

import pytest
from playwright.sync_api import expect

from backoffice.screening import model as ml
from portal.auth.principal import SYSTEM
from tests.conftest import browser_set_language, browser_sign_in_staff

pytestmark = pytest.mark.browser


def test_steward_drafts_lead_approves_run_flags_teacher_reads_reasons(session, make, consented, records, new_page):
    today = date.today()
    teacher, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    for back in range(3):
        y, m = today.year, today.month - back
        if m <= 0:
            y, m = y - 1, m + 12
        records.attendance(child, date(y, m, 1), school_days=20, absent=4)
    steward = make.staff("data_steward")
    lead = make.staff("school_lead", schools=[klass.school])
    session.commit()

    page = new_page()
    browser_sign_in_staff(page, steward.email)
    page.goto("/staff/screening/rules/new")
    page.fill("#title", "Absence rule")
    page.fill("#source", "absence_recent [2]: absence_rate_3m >= 10%")
    page.locator("main form button[type=submit]").first.click()
    page.get_by_role("button", name="承認を依頼する").click()
    expect(page.locator("h1 .badge-warn")).to_be_visible()
    expect(page.get_by_text("この版はあなたが作成しました。別の職員の承認が必要です。")).to_be_visible()  # no approve button for the author

    page2 = new_page()
    browser_sign_in_staff(page2, lead.email)
    page2.goto("/staff/screening/rules")
    page2.locator("table a").first.click()
    page2.get_by_role("button", name="承認して有効にする").click()
    expect(page2.locator("h1 .badge-ok")).to_be_visible()

    page.goto("/staff/screening/rules")
    page.get_by_role("button", name="判定を実行する").click()
    expect(page.locator(".flash-success")).to_be_visible()

    page3 = new_page()
    browser_sign_in_staff(page3, teacher.email)
    page3.goto("/staff/screening/")
    queue = page3.locator(".sc-queue")
    expect(queue).to_contain_text(child.name)
    expect(queue).to_contain_text("直近3か月の授業日のうち20%を欠席")
    browser_set_language(page3, "en")
    page3.goto("/staff/screening/")
    expect(page3.locator(".sc-queue")).to_contain_text(
        "Absent on 20% of school days in the last 3 months (threshold ≥ 10%)"
    )


def test_teacher_raises_a_flag_by_hand_and_records_the_decision(session, make, consented, new_page):
    teacher, klass = make.teacher_with_class(grade=3)
    child = consented(klass)
    session.commit()

    page = new_page()
    browser_sign_in_staff(page, teacher.email)
    browser_set_language(page, "en")
    page.goto(f"/staff/screening/child/{child.id}")
    expect(page.get_by_text("This child has no flags.")).to_be_visible()
    page.get_by_label("Why are you flagging this child?").fill("Comes to school without breakfast")
    page.get_by_label("High").check()
    page.get_by_role("button", name="Raise the flag").click()
    expect(page.locator(".flash-success")).to_contain_text("The flag is in the queue.")
    expect(page.locator(".sc-reasons")).to_contain_text("Raised by a staff member: Comes to school without breakfast")

    browser_set_language(page, "ja")
    page.goto(f"/staff/screening/child/{child.id}")
    page.get_by_label("支援が必要（フラグを確認）").check()
    page.get_by_role("button", name="決定を記録する").click()
    expect(page.locator(".flash-success")).to_be_visible()
    expect(page.locator(".sc-flag").first).to_contain_text("学校が判断した")


def test_evaluation_page_with_figures_in_both_languages(session, make, new_page):
    ml.train(session, SYSTEM, ml.synthetic_decisions(600, seed=1))
    steward = make.staff("data_steward")
    session.commit()

    page = new_page()
    browser_sign_in_staff(page, steward.email)
    page.goto("/staff/screening/evaluation")
    expect(page.locator("h1")).to_contain_text("判定結果の検証")
    expect(page.locator(".sc-card")).to_contain_text("男子")
    expect(page.locator(".sc-card")).to_contain_text("fairlearn")
    browser_set_language(page, "en")
    page.goto("/staff/screening/evaluation")
    card = page.locator(".sc-card")
    expect(card).to_contain_text("Intended use")
    expect(card).to_contain_text("Girls")
    expect(card).to_contain_text("School S1")
    page.get_by_role("button", name="Switch the model on").click()
    expect(page.locator(".flash-success")).to_contain_text("The model is on")
