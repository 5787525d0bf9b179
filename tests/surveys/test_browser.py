"""The issue's main paths in a real browser, in Japanese and in English."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.auth.service import principal_for
from portal.orm import utcnow
from portal.people.models import Role
from surveys import service
from surveys.models import Frequency, HelpAlert, SurveyResponse, SurveySchedule
from tests.conftest import browser_sign_in_guardian, browser_sign_in_staff, browser_sign_in_student
from tests.surveys.conftest import MOOD_OK, open_now

pytestmark = pytest.mark.browser

PHONE, TABLET = (390, 844), (1024, 768)


@pytest.mark.parametrize("locale,size", [("ja", PHONE), ("en", TABLET)])
def test_grade2_student_answers_the_mood_check_in_with_ruby(new_page, session, make, sv, locale, size):
    """One question a screen, big touch targets; ruby over the kanji in Japanese."""
    _t, cls = make.teacher_with_class(grade=2)
    child = sv.consented_child(cls, pin="482913", locale=locale)
    a = open_now(session, sv.schedule(cls, "mood"), child)
    session.commit()
    page = new_page(*size)
    browser_sign_in_student(page, child.student_no, "482913")
    page.goto("/student/checkins")
    page.locator(f"a[href='/student/checkins/{a.id}']").click()
    expect(page.locator("legend.sv-question")).to_have_count(1)  # one question a screen
    if locale == "ja":
        assert page.locator("legend ruby rt").first.inner_text() == "きょう"
        expect(page.locator("legend.sv-question")).to_contain_text("天気")
    else:
        expect(page.locator("legend.sv-question")).to_have_text("What is the weather in your heart today?")
        expect(page.locator("ruby")).to_have_count(0)
    sunny = page.locator("label[for='f-weather-4']")
    assert sunny.bounding_box()["height"] >= 64 and sunny.bounding_box()["width"] >= 64  # big touch target
    sunny.click()
    page.get_by_role("button", name="つぎへ" if locale == "ja" else "Next question").click()
    expect(page.locator("legend.sv-question")).to_contain_text("眠" if locale == "ja" else "sleep")
    for item, value in [("sleep", 3), ("breakfast", 3), ("friends", 2), ("worries", 0)]:
        page.locator(f"label[for='f-{item}-{value}']").click()
        page.locator("form.sv-form button[type=submit]").last.click()
    page.locator("label[for='f-talk-0']").click()
    page.get_by_role("button", name="おくる" if locale == "ja" else "Send").click()
    page.wait_for_url(f"**/student/checkins/{a.id}/done")
    expect(page.locator("h1")).to_have_text("おしえてくれて ありがとう！" if locale == "ja" else "Thank you for telling us!")
    session.expire_all()
    r = session.scalar(select(SurveyResponse).where(SurveyResponse.assignment_id == a.id))
    assert r.answers == {"weather": 4, "sleep": 3, "breakfast": 3, "friends": 2, "worries": 0, "talk": 0}


def test_half_done_check_in_resumes_where_the_child_left_it(browser_page, session, make, sv):
    _t, cls = make.teacher_with_class(grade=1)
    child = sv.consented_child(cls, pin="130579")
    a = open_now(session, sv.schedule(cls, "mood"), child)
    session.commit()
    page = browser_page
    browser_sign_in_student(page, child.student_no, "130579")
    page.goto(f"/student/checkins/{a.id}")
    page.locator("label[for='f-weather-2']").click()
    page.get_by_role("button", name="つぎへ").click()
    page.locator("label[for='f-sleep-1']").click()
    page.get_by_role("button", name="つぎへ").click()
    page.goto("/student/checkins")  # the child walks away, then comes back
    expect(page.locator(f"a[href='/student/checkins/{a.id}']")).to_contain_text("つづき")
    page.locator(f"a[href='/student/checkins/{a.id}']").click()
    expect(page.locator(".sv-progress")).to_contain_text("3")  # the third question, breakfast
    expect(page.locator("input[name='breakfast']")).to_have_count(3)


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_junior_high_student_asks_to_talk_and_the_counsellor_acknowledges(new_page, session, make, sv, outbox, locale):
    teacher, cls = make.teacher_with_class(grade=8)
    counsellor = make.staff(Role.counsellor, schools=[cls.school], locale=locale)
    child = sv.consented_child(cls, pin="771122", locale=locale)
    session.commit()
    page = new_page(*PHONE)
    browser_sign_in_student(page, child.student_no, "771122")
    page.goto("/student/" if locale == "ja" else "/student/checkins")  # on the home page and beside the check-ins
    page.get_by_role("button", name="だれかと はなしたい" if locale == "ja" else "I want to talk to someone").click()
    page.wait_for_url("**/student/talk/sent")
    main = page.locator("main")
    expect(main).to_contain_text(teacher.name.split(" ")[0])  # whom to expect, by name
    expect(main).to_contain_text("スクールカウンセラー" if locale == "ja" else "school counsellor")
    assert counsellor.email in {m["To"] for m in outbox}  # told by e-mail at once

    staff = new_page()
    browser_sign_in_staff(staff, counsellor.email)
    staff.goto("/staff/alerts")
    card = staff.locator(".sv-alert-open").filter(has_text=child.name)
    card.locator("textarea").fill("昼休みに面談。金曜に再確認。" if locale == "ja" else "Met the student at lunch; follow-up on Friday.")
    card.get_by_role("button", name="対応を記録" if locale == "ja" else "Acknowledge").click()
    expect(staff.locator(".flashes")).to_contain_text("対応を記録しました" if locale == "ja" else "Alert acknowledged")
    expect(staff.locator(".sv-alert-open")).to_have_count(0)
    session.expire_all()
    alert = session.scalar(select(HelpAlert).where(HelpAlert.child_id == child.id))
    assert alert.acknowledged_by_staff_id == counsellor.id and alert.ack_note


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_guardian_answers_the_family_questionnaire_in_english(browser_page, session, make, sv, locale):
    """The family questionnaire in the family's own language (English, and the Japanese default)."""
    from datetime import time

    _t, cls = make.teacher_with_class(grade=4)
    child = sv.consented_child(cls)
    guardian = make.guardian(child, email=f"family-{locale}@example.invalid", locale=locale)
    sched = sv.schedule(cls, "family", frequency=Frequency.termly, start=time(8, 0), end=time(20, 0), days_open=14)
    a = open_now(session, sched, child)
    session.commit()
    page = browser_page
    browser_sign_in_guardian(page, guardian.email)
    page.goto("/family/questionnaires")
    title = "ご家庭のアンケート" if locale == "ja" else "Family questionnaire"
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    expect(page.locator("#item-household legend")).to_have_text(
        "お子さんは誰と暮らしていますか。" if locale == "ja" else "Who does the child live with?"
    )
    page.locator("label[for='f-household-2']").click()
    page.locator("label[for='f-worries-1']").click()
    page.locator("label[for='f-support-4']").click()
    page.get_by_role("button", name="回答を送信" if locale == "ja" else "Send answers").click()
    expect(page.locator(".flashes")).to_contain_text("ありがとうございました" if locale == "ja" else "Thank you")
    session.expire_all()
    r = session.scalar(select(SurveyResponse).where(SurveyResponse.assignment_id == a.id))
    assert r.answers["support"] == [4] and r.respondent_kind == "guardian"


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_teacher_sees_who_answered_today_and_a_childs_trend(new_page, session, make, sv, locale):
    teacher, cls = make.teacher_with_class(grade=5)
    teacher.locale = locale
    sched = sv.schedule(cls, "mood")
    answered, waiting = sv.consented_child(cls), sv.consented_child(cls)
    now = utcnow()
    for weeks_ago, weather in [(5, "4"), (3, "2"), (1, "1"), (0, "2")]:
        at = now - timedelta(weeks=weeks_ago)
        a = open_now(session, sched, answered, at=at)
        service.submit(session, principal_for(answered), a.id, {**MOOD_OK, "weather": weather}, at)
    open_now(session, sched, waiting)
    session.commit()
    page = new_page()
    browser_sign_in_staff(page, teacher.email)
    page.goto("/staff/checkins")
    expect(page.locator("main")).to_contain_text("2人中1人" if locale == "ja" else "1 of 2 answered")
    row = page.locator("tr").filter(has_text=answered.name)
    expect(row).to_contain_text("回答済み" if locale == "ja" else "Answered")
    row.get_by_role("link", name=answered.name).click()
    chart = page.locator(".sv-chart svg")
    expect(chart.locator("circle.sv-dot")).to_have_count(4)  # four check-ins over the weeks
    expect(chart.locator("circle.sv-dot-low")).to_have_count(3)  # at or below the threshold
    expect(chart.locator(".sv-threshold")).to_have_count(1)
    session.expire_all()
    assert session.scalar(
        select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "child.read", AuditEvent.child_id == answered.id, AuditEvent.actor_id == teacher.id
        )
    ) >= 2  # the class list and the child's page


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_school_lead_schedules_a_check_in_and_an_overlap_is_refused(new_page, session, make, locale):
    _t, cls = make.teacher_with_class(grade=3)
    lead = make.staff(Role.school_lead, schools=[cls.school], locale=locale)
    session.commit()
    page = new_page()
    browser_sign_in_staff(page, lead.email)
    page.goto("/staff/surveys/schedules")

    def fill(start: str, end: str):
        page.fill("#grade", "3")
        page.select_option("#instrument_code", "mood")
        page.select_option("#frequency", "school_day")
        page.fill("#window_start", "08:00")
        page.fill("#window_end", "10:00")
        page.fill("#reminder_minutes", "30")
        page.fill("#starts_on", start)
        page.fill("#ends_on", end)
        page.get_by_role("button", name="スケジュールを保存" if locale == "ja" else "Save schedule").click()

    fill("2027-01-08", "2027-03-24")
    expect(page.locator(".flashes")).to_contain_text("保存しました" if locale == "ja" else "Schedule saved")
    expect(page.locator("tbody tr")).to_have_count(1)
    fill("2027-02-01", "2027-02-28")
    expect(page.locator("p.error[role=alert]")).to_contain_text("重なっています" if locale == "ja" else "overlaps")
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(SurveySchedule)) == 1


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_school_lead_changes_a_schedule_and_the_closed_days(new_page, session, make, sv, locale):
    from datetime import date, time

    from surveys.models import ClosedDay

    _t, cls = make.teacher_with_class(grade=3)
    lead = make.staff(Role.school_lead, schools=[cls.school], locale=locale)
    sched = sv.schedule(cls, "mood")
    session.commit()
    page = new_page()
    browser_sign_in_staff(page, lead.email)
    page.goto("/staff/surveys/schedules")
    page.locator("tbody tr").get_by_role("link", name="変更" if locale == "ja" else "Change").click()
    page.fill("#window_start", "08:15")
    page.fill("#window_end", "09:45")
    page.get_by_role("button", name="変更を保存" if locale == "ja" else "Save changes").click()
    expect(page.locator(".flashes")).to_contain_text("次回から" if locale == "ja" else "from the next one")
    expect(page.locator("tbody tr")).to_contain_text("08:15–09:45")

    page.goto(f"/staff/surveys/closed-days?school_id={cls.school_id}")
    page.fill("#start", "2027-03-25")
    page.fill("#end", "2027-03-26")
    page.fill("#reason", "学年末休業" if locale == "ja" else "End of year")
    page.get_by_role("button", name="休業日を追加" if locale == "ja" else "Add closed days").click()
    expect(page.locator(".flashes")).to_contain_text("2日" if locale == "ja" else "2 closed days")
    expect(page.locator("tbody tr")).to_have_count(2)
    page.locator("tbody tr").first.get_by_role("button").click()
    expect(page.locator(".flashes")).to_contain_text("授業日に戻しました" if locale == "ja" else "school day again")
    expect(page.locator("tbody tr")).to_have_count(1)
    session.expire_all()
    assert session.get(SurveySchedule, sched.id).window_start == time(8, 15)
    assert session.scalars(select(ClosedDay.day)).all() == [date(2027, 3, 26)]
