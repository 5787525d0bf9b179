"""Demo data: schedules for every school and a few weeks of synthetic check-ins.

Only children whose (demo) families consented to ``wellbeing_survey`` get
assignments; a few have low-mood streaks, and one junior-high student has an
open help request, so the staff pages have something to show.
"""

from __future__ import annotations

import json
from datetime import date, time, timedelta

from sqlalchemy import select

from consent.gate import consented_child_ids
from portal.auth.principal import SYSTEM
from portal.orm import utcnow
from portal.people.models import Enrolment, SchoolKind
from surveys import instruments, scheduling, scoring
from surveys.models import (
    AlertReason,
    AssignmentStatus,
    Frequency,
    HelpAlert,
    SignalKind,
    SurveyAssignment,
    SurveyResponse,
    SurveySignal,
)

WEEKS = 4


def load(session, ctx) -> None:
    rng = ctx.rng
    start, end = ctx.year.starts_on, ctx.year.ends_on
    schedules = {}
    for school in ctx.schools:
        scheduling.add_closed_days(session, SYSTEM, school.id, date(2026, 7, 21), date(2026, 8, 31), "夏季休業")
        grades = range(1, 7) if school.kind == SchoolKind.elementary else range(7, 10)
        for grade in grades:
            base = {"school_id": school.id, "grade": grade, "starts_on": start, "ends_on": end}
            schedules[(school.id, grade)] = scheduling.create_schedule(
                session, SYSTEM,
                scheduling.ScheduleInput(instrument_code="mood", frequency=Frequency.school_day,
                                         window_start=time(8, 0), window_end=time(10, 0), reminder_minutes=30, **base),
            )
            if grade >= 7:
                scheduling.create_schedule(
                    session, SYSTEM,
                    scheduling.ScheduleInput(instrument_code="who5", frequency=Frequency.weekly, weekday=0,
                                             window_start=time(8, 0), window_end=time(16, 0), **base),
                )
            scheduling.create_schedule(
                session, SYSTEM,
                scheduling.ScheduleInput(instrument_code="family", frequency=Frequency.termly, days_open=14,
                                         window_start=time(8, 0), window_end=time(20, 0), reminder_minutes=3 * 24 * 60, **base),
            )
    session.flush()

    now = utcnow()
    today = now.astimezone(scheduling.TOKYO).date()
    consented = set(session.scalars(consented_child_ids(scheduling.PURPOSE)))
    demo_classes = [c for c in ctx.classes if c.grade == 2][:1] + [c for c in ctx.classes if c.grade == 8][:1]
    mood = instruments.get("mood")
    low_children: set[int] = set()
    for cls in demo_classes:
        sched = schedules[(cls.school_id, cls.grade)]
        closed = scheduling.closed_days(session, cls.school_id, today - timedelta(weeks=WEEKS), today)
        days = [today - timedelta(days=i) for i in range(WEEKS * 7, 0, -1)]
        days = [d for d in days if scheduling.is_school_day(d, closed)]
        kids = [cid for cid in session.scalars(select(Enrolment.child_id).where(Enrolment.class_id == cls.id)) if cid in consented]
        low_children.update(kids[:2])
        for cid in kids:
            recent_low = []
            for i, day in enumerate(days):
                opens, closes, _ = scheduling.window(sched, day)
                a = SurveyAssignment(schedule_id=sched.id, child_id=cid, instrument_code="mood",
                                     instrument_version=mood.version, respondent="student", for_date=day,
                                     opens_at=opens, closes_at=closes, created_at=opens)
                session.add(a)
                if rng.random() < 0.1:
                    a.status = AssignmentStatus.missed
                    continue
                a.status = AssignmentStatus.submitted
                session.flush()
                streak = cid in low_children and i >= len(days) - 5
                weather = rng.choice([1, 2, 2]) if streak else rng.choice([2, 3, 4, 4, 5, 5])
                answers = {"weather": weather, "sleep": rng.choice([1, 2, 3, 3]), "breakfast": rng.choice([1, 3, 3, 3]),
                           "friends": rng.choice([2, 3, 3]), "worries": rng.choice([0, 0, 1, 2] if streak else [0, 0, 0, 1]), "talk": 0}
                result = scoring.score(mood, answers)
                at = opens + timedelta(minutes=rng.randrange(5, 110))
                r = SurveyResponse(assignment_id=a.id, child_id=cid, instrument_code="mood", instrument_version=mood.version,
                                   respondent_kind="student", respondent_id=cid, submitted_at=at, answers=answers,
                                   score=result.score, low=result.low,
                                   free_text=json.dumps({"note": "さいきん よく眠れない"}, ensure_ascii=False) if streak and cls.grade >= 4 and i == len(days) - 1 else None)
                session.add(r)
                recent_low = (recent_low + [result.low])[-5:]
                if result.low and sum(recent_low) >= 3:
                    session.flush()
                    session.add(SurveySignal(child_id=cid, kind=SignalKind.low_mood_streak, response_id=r.id,
                                             value=float(sum(recent_low)), observed_at=at))
    session.flush()

    # One open help request from a junior-high student, 40 minutes ago.
    jh = next((c for c in demo_classes if c.grade >= 7), None)
    if jh is not None:
        cid = next((c for c in session.scalars(select(Enrolment.child_id).where(Enrolment.class_id == jh.id)) if c in consented), None)
        if cid is not None:
            session.add(HelpAlert(child_id=cid, school_id=jh.school_id, class_id=jh.id, reason=AlertReason.talk_request,
                                  created_at=now - timedelta(minutes=40)))
            session.add(SurveySignal(child_id=cid, kind=SignalKind.help_request, observed_at=now - timedelta(minutes=40)))
    scheduling.open_due(session, now)
    session.flush()
