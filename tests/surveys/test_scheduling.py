"""Schedules, the school calendar, and a clock moved through a school week."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from portal.auth.principal import SYSTEM
from surveys import scheduling
from surveys.models import AssignmentStatus, Frequency, SurveyAssignment
from surveys.scheduling import TOKYO


def tokyo(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), TOKYO).astimezone(UTC)


def test_weekends_national_holidays_and_school_closed_days_are_not_school_days(session, make):
    school = make.school()
    scheduling.add_closed_days(session, SYSTEM, school.id, date(2026, 7, 21), date(2026, 7, 22), "夏季休業")
    closed = scheduling.closed_days(session, school.id, date(2026, 7, 1), date(2026, 7, 31))
    assert date(2026, 7, 20) in closed  # 海の日 (Marine Day), from the holidays package
    assert date(2026, 7, 21) in closed and date(2026, 7, 22) in closed
    assert scheduling.is_school_day(date(2026, 7, 17), closed)
    assert not scheduling.is_school_day(date(2026, 7, 18), closed)  # Saturday


def test_overlapping_schedule_is_refused_with_a_clear_message(session, make, sv):
    _t, cls = make.teacher_with_class(grade=2)
    sv.schedule(cls, "mood")
    with pytest.raises(scheduling.ScheduleError, match="重なっています"):
        sv.schedule(cls, "mood", starts_on=date(2026, 9, 1), ends_on=date(2026, 12, 31))
    # weekly on different weekdays do not overlap; the same weekday does
    _t2, cls8 = make.teacher_with_class(grade=8)
    sv.schedule(cls8, "who5", frequency=Frequency.weekly, weekday=0)
    sv.schedule(cls8, "who5", frequency=Frequency.weekly, weekday=3)
    with pytest.raises(scheduling.ScheduleError, match="重なっています"):
        sv.schedule(cls8, "who5", frequency=Frequency.weekly, weekday=0, starts_on=date(2026, 5, 1))


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"instrument": "who5"}, "年生向けではありません"),
        ({"start": time(10, 0), "end": time(8, 0)}, "開始より後"),
        ({"frequency": Frequency.weekly}, "曜日を選んで"),
        ({"starts_on": date(2026, 5, 1), "ends_on": date(2026, 4, 1)}, "開始日より前"),
    ],
)
def test_invalid_schedules_are_refused(session, make, sv, kw, message):
    _t, cls = make.teacher_with_class(grade=2)
    kw = dict(kw)
    inst = kw.pop("instrument", "mood")
    with pytest.raises(scheduling.ScheduleError, match=message):
        sv.schedule(cls, inst, **kw)


def test_a_school_week_opens_closes_and_reminds(session, make, sv, outbox):
    """Mon 2026-07-13 .. Fri 07-17; Monday 07-20 is Marine Day; Thursday is a school closed day."""
    _t, cls = make.teacher_with_class(grade=2)
    a, b = sv.consented_child(cls), sv.consented_child(cls)
    no_consent = make.child(cls)
    make.guardian(no_consent)
    scheduling.add_closed_days(session, SYSTEM, cls.school_id, date(2026, 7, 16), date(2026, 7, 16), "行事")
    sv.schedule(cls, "mood", reminder=30)
    opened_days = []
    for offset in range(8):  # Monday to the next Monday
        day = date(2026, 7, 13) + timedelta(days=offset)
        before = scheduling.tick(session, tokyo(day, 7, 55))
        assert before["opened"] == 0
        at_open = scheduling.tick(session, tokyo(day, 8, 0))
        again = scheduling.tick(session, tokyo(day, 8, 5))  # a second run (or a restart) repeats nothing
        assert again == {"closed": 0, "opened": 0, "reminded": 0}
        if at_open["opened"]:
            opened_days.append(day)
            assert at_open["opened"] == 2  # only consented children
            assert scheduling.tick(session, tokyo(day, 9, 30))["reminded"] == 2
            assert scheduling.tick(session, tokyo(day, 9, 45))["reminded"] == 0
            assert scheduling.tick(session, tokyo(day, 10, 0))["closed"] == 2
    assert opened_days == [date(2026, 7, 13), date(2026, 7, 14), date(2026, 7, 15), date(2026, 7, 17)]
    statuses = session.execute(
        select(SurveyAssignment.status, func.count()).group_by(SurveyAssignment.status)
    ).all()
    assert dict(statuses) == {AssignmentStatus.missed: 8}
    assert not session.scalar(select(func.count()).where(SurveyAssignment.child_id == no_consent.id))
    assert {x.child_id for x in session.scalars(select(SurveyAssignment))} == {a.id, b.id}
    assert outbox == []  # students are reminded on their page, not by e-mail


def test_weekly_and_termly_due_days(session, make, sv):
    _t, cls8 = make.teacher_with_class(grade=8)
    weekly = sv.schedule(cls8, "who5", frequency=Frequency.weekly, weekday=2)
    termly = sv.schedule(cls8, "mood", frequency=Frequency.termly)
    closed = scheduling.closed_days(session, cls8.school_id, date(2026, 8, 25), date(2026, 9, 30))
    assert scheduling.is_due(weekly, date(2026, 9, 2), closed)
    assert not scheduling.is_due(weekly, date(2026, 9, 3), closed)
    assert scheduling.is_due(termly, date(2026, 9, 1), closed)  # Tuesday, first school day of term 2
    assert not scheduling.is_due(termly, date(2026, 9, 2), closed)


def test_family_questionnaire_stays_open_for_days_and_reminds_guardians_by_email(session, make, sv, outbox):
    _t, cls = make.teacher_with_class(grade=3)
    child = sv.consented_child(cls)
    sv.schedule(cls, "family", frequency=Frequency.termly, start=time(8, 0), end=time(20, 0), days_open=14, reminder=60 * 24 * 3)
    assert scheduling.tick(session, tokyo(date(2026, 9, 1), 9))["opened"] == 1
    a = session.scalar(select(SurveyAssignment).where(SurveyAssignment.child_id == child.id))
    assert a.respondent == "guardian" and a.closes_at == tokyo(date(2026, 9, 15), 20)
    assert scheduling.tick(session, tokyo(date(2026, 9, 12), 21))["reminded"] == 1
    assert len(outbox) == 1 and "/family/questionnaires" in outbox[0].get_content()
