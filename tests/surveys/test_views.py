"""Pages: the student check-in, the family questionnaire, staff views, schedules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from surveys import views
from surveys.models import HelpAlert, SurveyAssignment, SurveyResponse, SurveySchedule
from tests.conftest import csrf_token_from
from tests.surveys.conftest import MONDAY_0830, MOOD_OK

NOW = MONDAY_0830 + timedelta(minutes=5)


@pytest.fixture(autouse=True)
def _clock(monkeypatch):
    monkeypatch.setattr(views, "clock", lambda: NOW)


def _a(session, child):
    return session.scalar(select(SurveyAssignment).where(SurveyAssignment.child_id == child.id))


def test_grade2_check_in_is_one_question_a_screen_with_ruby_and_resumes(session, sv, login, client):
    env = sv.setup(grade=2)
    session.commit()
    login(env["child"])
    a = _a(session, env["child"])
    page = client.get(f"/student/checkins/{a.id}").get_data(as_text=True)
    assert "<ruby>" in page and 'name="weather"' in page and 'name="sleep"' not in page
    token = csrf_token_from(page)
    resp = client.post(f"/student/checkins/{a.id}", data={"csrf_token": token, "step": "0", "weather": "2"})
    assert resp.status_code == 302 and "step=1" in resp.headers["Location"]
    # leaving and coming back resumes at the next question
    page = client.get(f"/student/checkins/{a.id}").get_data(as_text=True)
    assert 'name="sleep"' in page
    resp = client.post(f"/student/checkins/{a.id}", data={"csrf_token": token, "step": "1"})
    assert resp.status_code == 400 and "こたえを えらんでね" in resp.get_data(as_text=True)


def test_junior_high_sees_all_questions_without_ruby(session, sv, login, client, post_form):
    env = sv.setup(grade=8)
    session.commit()
    login(env["child"])
    a = _a(session, env["child"])
    page = client.get(f"/student/checkins/{a.id}").get_data(as_text=True)
    assert "<ruby>" not in page and 'name="talk"' in page and 'name="note"' in page
    resp = post_form(f"/student/checkins/{a.id}", {**MOOD_OK, "talk": "1"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/student/checkins/{a.id}/done")
    done = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "せんせい" in done
    assert session.scalar(select(func.count()).select_from(HelpAlert)) == 1


def test_bad_answer_on_the_page_is_refused_with_a_message(session, sv, login, post_form):
    env = sv.setup(grade=8)
    session.commit()
    login(env["child"])
    a = _a(session, env["child"])
    resp = post_form(f"/student/checkins/{a.id}", {**MOOD_OK, "weather": "42"})
    assert resp.status_code == 400
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 0


def test_another_childs_check_in_is_not_found(session, sv, make, login, client):
    env = sv.setup(grade=8)
    other = make.child(env["cls"])
    session.commit()
    login(other)
    assert client.get(f"/student/checkins/{_a(session, env['child']).id}").status_code == 404


def test_child_without_consent_sees_no_check_in(session, sv, login, client):
    env = sv.setup(consent=False)
    session.commit()
    login(env["child"])
    page = client.get("/student/checkins").get_data(as_text=True)
    assert "/student/checkins/" not in page


def test_talk_button_reaches_the_adults(session, sv, login, client, post_form, outbox):
    env = sv.setup(grade=8)
    session.commit()
    login(env["child"])
    resp = post_form("/student/talk", {}, page="/student/checkins")
    assert resp.headers["Location"].endswith("/student/talk/sent")
    assert len(outbox) == 2


def test_teacher_sees_own_class_today_and_child_trend_is_audited(session, sv, make, login, client):
    from portal.auth.service import principal_for
    from surveys import service

    env = sv.setup(grade=4)
    service.submit(session, principal_for(env["child"]), _a(session, env["child"]).id, {**MOOD_OK, "weather": "1", "note": "秘密"}, NOW)
    other_teacher, other_cls = make.teacher_with_class(grade=4)
    session.commit()
    login(env["teacher"])
    page = client.get("/staff/checkins").get_data(as_text=True)
    assert env["child"].name in page
    child_page = client.get(f"/staff/checkins/children/{env['child'].id}")
    assert child_page.status_code == 200
    html = child_page.get_data(as_text=True)
    assert "<svg" in html and "sv-threshold" in html
    assert "秘密" not in html  # free text is for the counsellor
    assert session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "child.read", AuditEvent.child_id == env["child"].id)) >= 1
    login(other_teacher)
    assert client.get(f"/staff/checkins/children/{env['child'].id}").status_code == 404
    assert env["child"].name not in client.get("/staff/checkins").get_data(as_text=True)
    login(env["counsellor"])
    assert "秘密" in client.get(f"/staff/checkins/children/{env['child'].id}").get_data(as_text=True)


def test_counsellor_acknowledges_with_a_note(session, sv, login, client, post_form):
    from portal.auth.service import principal_for
    from surveys import service

    env = sv.setup(grade=8)
    alert = service.talk_request(session, principal_for(env["child"]), NOW)
    session.commit()
    login(env["counsellor"])
    assert env["child"].name in client.get("/staff/alerts").get_data(as_text=True)
    resp = post_form(f"/staff/alerts/{alert.id}/ack", {"note": ""}, page="/staff/alerts")
    assert resp.status_code == 302
    session.refresh(alert)
    assert alert.acknowledged_at is None
    post_form(f"/staff/alerts/{alert.id}/ack", {"note": "昼休みに話を聞いた"}, page="/staff/alerts")
    session.refresh(alert)
    assert alert.acknowledged_at is not None


def test_lead_creates_schedule_and_overlap_is_refused_on_the_page(session, make, login, post_form):
    from portal.people.models import Role

    _t, cls = make.teacher_with_class(grade=3)
    lead = make.staff(Role.school_lead, schools=[cls.school])
    session.commit()
    login(lead)
    data = {"school_id": str(cls.school_id), "grade": "3", "instrument_code": "mood", "frequency": "school_day",
            "weekday": "", "window_start": "08:00", "window_end": "10:00", "days_open": "0", "reminder_minutes": "30",
            "starts_on": "2026-04-01", "ends_on": "2027-03-31"}
    assert post_form("/staff/surveys/schedules", data).status_code == 302
    resp = post_form("/staff/surveys/schedules", data)
    assert resp.status_code == 400
    assert session.scalar(select(func.count()).select_from(SurveySchedule)) == 1


def test_guardian_answers_the_family_questionnaire(session, sv, make, login, post_form, client, monkeypatch):
    from datetime import time

    from surveys.models import Frequency

    env = sv.setup(grade=3, instrument="family", frequency=Frequency.termly, start=time(0, 0), end=time(23, 0),
                   days_open=14, now=MONDAY_0830)
    # open the termly assignment: use a school day that is a term start
    guardian = make.guardian(env["child"], locale="en")
    session.commit()
    from datetime import UTC, datetime

    from surveys import scheduling

    term_start = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)
    scheduling.open_due(session, term_start)
    session.commit()
    views_now = term_start + timedelta(hours=1)
    monkeypatch.setattr(views, "clock", lambda: views_now)
    login(guardian)
    listing = client.get("/family/questionnaires").get_data(as_text=True)
    assert "Family questionnaire" in listing
    a = _a(session, env["child"])
    resp = post_form(f"/family/questionnaires/{a.id}", {"worries": ["1", "3"]})
    assert resp.status_code == 400  # the household question is required
    resp = post_form(f"/family/questionnaires/{a.id}", {"household": "2", "worries": ["1", "3"], "note": "help please"})
    assert resp.status_code == 302
    r = session.scalar(select(SurveyResponse))
    assert r.respondent_kind == "guardian" and r.answers["worries"] == [1, 3]


def test_check_in_after_the_window_shows_a_message_and_stores_nothing(session, sv, login, client, monkeypatch):
    env = sv.setup(grade=8)
    session.commit()
    login(env["child"])
    a = _a(session, env["child"])
    token = csrf_token_from(client.get(f"/student/checkins/{a.id}").get_data(as_text=True))
    monkeypatch.setattr(views, "clock", lambda: MONDAY_0830 + timedelta(hours=2))  # the window closed at 10:00
    resp = client.post(f"/student/checkins/{a.id}", data={**MOOD_OK, "csrf_token": token}, follow_redirects=True)
    assert "じかんは おわりました" in resp.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) == 0


def test_check_in_sent_twice_from_the_page_stores_one_answer(session, sv, login, client):
    env = sv.setup(grade=8)
    session.commit()
    login(env["child"])
    a = _a(session, env["child"])
    token = csrf_token_from(client.get(f"/student/checkins/{a.id}").get_data(as_text=True))
    first = client.post(f"/student/checkins/{a.id}", data={**MOOD_OK, "csrf_token": token})
    second = client.post(f"/student/checkins/{a.id}", data={**MOOD_OK, "weather": "1", "csrf_token": token}, follow_redirects=True)
    assert first.status_code == 302
    assert "もう こたえて くれました" in second.get_data(as_text=True)
    rows = session.scalars(select(SurveyResponse)).all()
    assert len(rows) == 1 and rows[0].answers["weather"] == 4  # the first answer is kept


def test_alert_list_is_audited_and_free_text_is_for_the_counsellor_only(session, sv, login, client):
    from portal.auth.service import principal_for
    from surveys import service

    env = sv.setup(grade=5)
    service.submit(session, principal_for(env["child"]), _a(session, env["child"]).id,
                   {**MOOD_OK, "talk": "1", "note": "ないしょの話"}, NOW)
    session.commit()
    login(env["lead"])
    assert env["child"].name in client.get("/staff/alerts").get_data(as_text=True)
    reads = session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "child.read", AuditEvent.child_id == env["child"].id)).all()
    assert {"view": "surveys.alerts"} in reads
    child_page = client.get(f"/staff/checkins/children/{env['child'].id}").get_data(as_text=True)
    assert "ないしょの話" not in child_page  # the child was told only the counsellor reads it
    login(env["counsellor"])
    assert "ないしょの話" in client.get(f"/staff/checkins/children/{env['child'].id}").get_data(as_text=True)
