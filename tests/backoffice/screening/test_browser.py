"""Done-when: the steward drafts a rule, a second role approves it, a run flags a child,
the teacher sees the reasons in Japanese and English."""

from __future__ import annotations

from datetime import date

import pytest

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
    assert page.locator(".badge-warn").first.is_visible()

    page2 = new_page()
    browser_sign_in_staff(page2, lead.email)
    page2.goto("/staff/screening/rules")
    page2.locator("table a").first.click()
    page2.get_by_role("button", name="承認して有効にする").click()
    assert page2.locator(".badge-ok").first.is_visible()

    page.goto("/staff/screening/rules")
    page.get_by_role("button", name="判定を実行する").click()
    assert page.locator(".flash-success").is_visible()

    page3 = new_page()
    browser_sign_in_staff(page3, teacher.email)
    page3.goto("/staff/screening/")
    text = page3.locator(".sc-queue").inner_text()
    assert child.name in text
    assert "直近3か月の授業日のうち20%を欠席" in text
    browser_set_language(page3, "en")
    page3.goto("/staff/screening/")
    assert "Absent on 20% of school days in the last 3 months (threshold ≥ 10%)" in page3.locator(".sc-queue").inner_text()
