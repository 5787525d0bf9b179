"""The issue's main paths in a real browser."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.people.models import Role
from surveys.models import Frequency, HelpAlert, SurveyResponse
from tests.conftest import browser_sign_in_guardian, browser_sign_in_staff, browser_sign_in_student
from tests.surveys.conftest import open_now

pytestmark = pytest.mark.browser


def test_grade2_student_answers_the_mood_check_in_with_ruby(browser_page, session, make, sv):
    _t, cls = make.teacher_with_class(grade=2)
    child = sv.consented_child(cls, pin="482913")
    a = open_now(session, sv.schedule(cls, "mood"), child)
    session.commit()
    page = browser_page
    browser_sign_in_student(page, child.student_no, "482913")
    page.goto("/student/checkins")
    page.locator(f"a[href='/student/checkins/{a.id}']").click()
    assert page.locator("legend ruby rt").first.inner_text() == "きょう"
    page.locator("label[for='f-weather-4']").click()  # big weather icons
    page.get_by_role("button", name="つぎへ").or_(page.get_by_role("button", name="次へ")).click()
    for item, value in [("sleep", 3), ("breakfast", 3), ("friends", 2), ("worries", 0)]:
        page.locator(f"label[for='f-{item}-{value}']").click()
        page.locator("form.sv-form button[type=submit]").last.click()
    page.locator("label[for='f-talk-0']").click()
    page.locator("form.sv-form button[type=submit]").last.click()
    page.wait_for_url(f"**/student/checkins/{a.id}/done")
    session.expire_all()
    r = session.scalar(select(SurveyResponse).where(SurveyResponse.assignment_id == a.id))
    assert r.answers == {"weather": 4, "sleep": 3, "breakfast": 3, "friends": 2, "worries": 0, "talk": 0}


def test_junior_high_student_asks_to_talk_and_the_counsellor_acknowledges(browser_page, new_page, session, make, sv):
    teacher, cls = make.teacher_with_class(grade=8)
    counsellor = make.staff(Role.counsellor, schools=[cls.school], locale="en")
    child = sv.consented_child(cls, pin="771122")
    session.commit()
    page = browser_page
    browser_sign_in_student(page, child.student_no, "771122")
    page.goto("/student/checkins")
    page.locator(".sv-talk-button").click()
    page.wait_for_url("**/student/talk/sent")
    assert teacher.name.split(" ")[0] in page.locator("main").inner_text()

    staff = new_page()
    browser_sign_in_staff(staff, counsellor.email)
    staff.goto("/staff/alerts")
    card = staff.locator(".sv-alert-open").filter(has_text=child.name)
    card.locator("textarea").fill("Met the student at lunch; follow-up on Friday.")
    card.get_by_role("button", name="Acknowledge").click()
    assert "Alert acknowledged" in staff.locator(".flashes").inner_text()
    session.expire_all()
    alert = session.scalar(select(HelpAlert).where(HelpAlert.child_id == child.id))
    assert alert.acknowledged_by_staff_id == counsellor.id


def test_guardian_answers_the_family_questionnaire_in_english(browser_page, session, make, sv):
    from datetime import time

    _t, cls = make.teacher_with_class(grade=4)
    child = sv.consented_child(cls)
    guardian = make.guardian(child, email="family-en@example.invalid", locale="en")
    sched = sv.schedule(cls, "family", frequency=Frequency.termly, start=time(8, 0), end=time(20, 0), days_open=14)
    a = open_now(session, sched, child)
    session.commit()
    page = browser_page
    browser_sign_in_guardian(page, guardian.email)
    page.goto("/family/questionnaires")
    page.get_by_role("link", name="Family questionnaire").click()
    assert page.get_by_role("heading", name="Family questionnaire").is_visible()
    page.locator("label[for='f-household-2']").click()
    page.locator("label[for='f-worries-1']").click()
    page.locator("label[for='f-support-4']").click()
    page.get_by_role("button", name="Send").click()
    assert "Thank you" in page.locator(".flashes").inner_text()
    session.expire_all()
    r = session.scalar(select(SurveyResponse).where(SurveyResponse.assignment_id == a.id))
    assert r.answers["support"] == [4] and r.respondent_kind == "guardian"
