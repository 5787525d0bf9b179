"""Changing a schedule and removing a closed day: services and pages."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.auth.principal import SYSTEM
from portal.people.models import Role
from surveys import scheduling, views
from surveys.models import AssignmentStatus, ClosedDay, Frequency, SurveyAssignment
from tests.surveys.conftest import MONDAY_0830
from tests.surveys.test_scheduling import tokyo

NOW = MONDAY_0830 + timedelta(minutes=5)
MONDAY = date(2026, 6, 8)


@pytest.fixture(autouse=True)
def _clock(monkeypatch):
    monkeypatch.setattr(views, "clock", lambda: NOW)


def _edit(sched, **kw):
    data = scheduling.schedule_input(sched)
    for k, v in kw.items():
        setattr(data, k, v)
    return data


# -- services ---------------------------------------------------------------------


def test_changed_window_applies_from_the_next_assignment(session, sv):
    env = sv.setup(grade=2)
    sched = env["schedule"]
    today = session.scalar(select(SurveyAssignment))
    changed = scheduling.update_schedule(session, SYSTEM, sched, _edit(sched, window_start=time(7, 30), window_end=time(9, 0)))
    assert changed == ["window_start", "window_end"]
    session.refresh(today)
    assert today.closes_at == tokyo(MONDAY, 10, 0)  # the open check-in keeps its window
    scheduling.tick(session, tokyo(MONDAY + timedelta(days=1), 7, 45))
    tuesday = session.scalar(select(SurveyAssignment).where(SurveyAssignment.for_date == MONDAY + timedelta(days=1)))
    assert tuesday.opens_at == tokyo(MONDAY + timedelta(days=1), 7, 30)
    assert tuesday.closes_at == tokyo(MONDAY + timedelta(days=1), 9, 0)
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "surveys.schedule_changed")) is not None


def test_edit_to_weekly_changes_which_days_are_due(session, sv):
    env = sv.setup(grade=8, instrument="who5")
    sched = env["schedule"]
    scheduling.update_schedule(session, SYSTEM, sched, _edit(sched, frequency=Frequency.weekly, weekday=2))
    assert sched.frequency == Frequency.weekly and sched.weekday == 2
    assert not scheduling.is_due(sched, MONDAY + timedelta(days=1), set())
    assert scheduling.is_due(sched, MONDAY + timedelta(days=2), set())


def test_edit_that_changes_nothing_records_nothing(session, sv):
    env = sv.setup()
    assert scheduling.update_schedule(session, SYSTEM, env["schedule"], _edit(env["schedule"])) == []
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "surveys.schedule_changed")) is None


def test_edit_cannot_change_school_grade_or_questionnaire(session, sv):
    env = sv.setup(grade=2)
    sched = env["schedule"]
    scheduling.update_schedule(session, SYSTEM, sched, _edit(sched, grade=5, instrument_code="family"))
    assert (sched.grade, sched.instrument_code) == (2, "mood")


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"window_start": time(10, 0), "window_end": time(8, 0)}, "開始より後"),
        ({"frequency": Frequency.weekly, "weekday": None}, "曜日を選んで"),
        ({"starts_on": date(2026, 5, 1), "ends_on": date(2026, 4, 1)}, "開始日より前"),
        ({"days_open": 3}, "当日に締め切る"),
    ],
)
def test_invalid_edits_are_refused_and_nothing_changes(session, sv, kw, message):
    env = sv.setup(grade=2)
    sched = env["schedule"]
    with pytest.raises(scheduling.ScheduleError, match=message):
        scheduling.update_schedule(session, SYSTEM, sched, _edit(sched, **kw))
    session.refresh(sched)
    assert sched.window_start == time(8, 0) and sched.frequency == Frequency.school_day


def test_edit_that_would_overlap_another_schedule_is_refused(session, sv):
    env = sv.setup(grade=2, ends_on=date(2026, 8, 31))
    later = sv.schedule(env["cls"], "mood", starts_on=date(2026, 9, 1), ends_on=date(2027, 3, 31))
    with pytest.raises(scheduling.ScheduleError, match="重なっています"):
        scheduling.update_schedule(session, SYSTEM, later, _edit(later, starts_on=date(2026, 8, 1)))
    # the schedule does not overlap itself
    assert scheduling.update_schedule(session, SYSTEM, later, _edit(later, starts_on=date(2026, 9, 2))) == ["starts_on"]


def test_stopped_schedule_cannot_be_edited(session, sv):
    env = sv.setup()
    sched = env["schedule"]
    scheduling.deactivate_schedule(session, SYSTEM, sched)
    with pytest.raises(scheduling.ScheduleError, match="停止"):
        scheduling.update_schedule(session, SYSTEM, sched, _edit(sched, window_end=time(11, 0)))


def test_removing_a_closed_day_makes_it_a_school_day_again(session, sv, make):
    env = sv.setup(grade=2)
    school_id = env["cls"].school_id
    tuesday = MONDAY + timedelta(days=1)
    scheduling.add_closed_days(session, SYSTEM, school_id, tuesday, tuesday, "開校記念日")
    scheduling.tick(session, tokyo(tuesday, 8, 30))
    assert session.scalar(select(func.count()).select_from(SurveyAssignment).where(SurveyAssignment.for_date == tuesday)) == 0
    assert scheduling.remove_closed_day(session, SYSTEM, school_id, tuesday) is True
    assert scheduling.remove_closed_day(session, SYSTEM, school_id, tuesday) is False
    scheduling.tick(session, tokyo(tuesday, 8, 35))
    assert session.scalar(select(SurveyAssignment.status).where(SurveyAssignment.for_date == tuesday)) == AssignmentStatus.open
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "surveys.closed_day_removed")) == 1


# -- pages --------------------------------------------------------------------------


def test_lead_changes_a_schedule_on_the_page(session, sv, make, login, client, post_form):
    env = sv.setup(grade=3)
    session.commit()
    login(env["lead"])
    url = f"/staff/surveys/schedules/{env['schedule'].id}/edit"
    assert url in client.get("/staff/surveys/schedules").get_data(as_text=True)
    page = client.get(url).get_data(as_text=True)
    assert 'value="08:00"' in page and 'value="2026-04-01"' in page
    data = {"frequency": "school_day", "weekday": "", "window_start": "08:15", "window_end": "09:45", "days_open": "0",
            "reminder_minutes": "20", "starts_on": "2026-04-01", "ends_on": "2027-03-31"}
    resp = post_form(url, data)
    assert resp.status_code == 302
    session.refresh(env["schedule"])
    assert env["schedule"].window_start == time(8, 15) and env["schedule"].reminder_minutes == 20


def test_bad_schedule_edit_shows_the_reason(session, sv, login, post_form):
    env = sv.setup(grade=3)
    session.commit()
    login(env["lead"])
    url = f"/staff/surveys/schedules/{env['schedule'].id}/edit"
    data = {"frequency": "weekly", "weekday": "", "window_start": "08:00", "window_end": "10:00", "days_open": "0",
            "reminder_minutes": "", "starts_on": "2026-04-01", "ends_on": "2027-03-31"}
    resp = post_form(url, data)
    assert resp.status_code == 400 and "曜日を選んで" in resp.get_data(as_text=True)
    data.update(frequency="school_day", window_start="11:00")
    resp = post_form(url, data)
    assert resp.status_code == 400 and "開始より後" in resp.get_data(as_text=True)
    session.refresh(env["schedule"])
    assert env["schedule"].frequency == Frequency.school_day and env["schedule"].window_start == time(8, 0)


def test_lead_of_another_school_cannot_edit_or_remove(session, sv, make, login, client):
    env = sv.setup(grade=3)
    scheduling.add_closed_days(session, SYSTEM, env["cls"].school_id, date(2026, 7, 21), date(2026, 7, 21), "")
    other = make.staff(Role.school_lead, schools=[make.school()])
    session.commit()
    login(other)
    assert client.get(f"/staff/surveys/schedules/{env['schedule'].id}/edit").status_code == 404
    day = session.scalar(select(ClosedDay))
    page = client.get("/staff/surveys/closed-days").get_data(as_text=True)
    from tests.conftest import csrf_token_from

    resp = client.post(f"/staff/surveys/closed-days/{day.id}/remove", data={"csrf_token": csrf_token_from(page)})
    assert resp.status_code == 404
    assert session.scalar(select(func.count()).select_from(ClosedDay)) == 1


def test_lead_removes_a_closed_day_on_the_page(session, sv, login, client, post_form):
    env = sv.setup(grade=3)
    school_id = env["cls"].school_id
    scheduling.add_closed_days(session, SYSTEM, school_id, date(2026, 7, 21), date(2026, 7, 22), "夏季休業")
    session.commit()
    login(env["lead"])
    page_url = f"/staff/surveys/closed-days?school_id={school_id}"
    first = session.scalar(select(ClosedDay).where(ClosedDay.day == date(2026, 7, 21)))
    resp = post_form(f"/staff/surveys/closed-days/{first.id}/remove", {}, page=page_url)
    assert resp.status_code == 302
    assert session.scalars(select(ClosedDay.day)).all() == [date(2026, 7, 22)]
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "授業日に戻しました" in page


def test_closed_day_removal_without_a_valid_form_changes_nothing(session, sv, login, client):
    env = sv.setup(grade=3)
    scheduling.add_closed_days(session, SYSTEM, env["cls"].school_id, date(2026, 7, 21), date(2026, 7, 21), "")
    session.commit()
    login(env["lead"])
    day = session.scalar(select(ClosedDay))
    resp = client.post(f"/staff/surveys/closed-days/{day.id}/remove", data={})
    assert resp.status_code in (302, 400)
    assert session.scalar(select(func.count()).select_from(ClosedDay)) == 1
