"""Demo data: schedules for every school and four weeks of synthetic check-ins for every class.

Only children whose (demo) families consented to ``wellbeing_survey`` get
assignments; a few have low-mood streaks, and one junior-high student has an
open help request, so the staff pages have something to show.
"""

from __future__ import annotations

import json
from datetime import date, time, timedelta

from sqlalchemy import insert, select

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
            schedules[(school.id, grade)] = {}
            schedules[(school.id, grade)]["mood"] = scheduling.create_schedule(
                session, SYSTEM,
                scheduling.ScheduleInput(instrument_code="mood", frequency=Frequency.school_day,
                                         window_start=time(8, 0), window_end=time(10, 0), reminder_minutes=30, **base),
            )
            if grade >= 7:
                schedules[(school.id, grade)]["who5"] = scheduling.create_schedule(
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
    roster: dict[int, list[int]] = {}
    for class_id, cid in session.execute(
        select(Enrolment.class_id, Enrolment.child_id)
        .where(Enrolment.class_id.in_([c.id for c in ctx.classes]))
        .order_by(Enrolment.class_id, Enrolment.attendance_no, Enrolment.child_id)
    ):
        if cid in consented:
            roster.setdefault(class_id, []).append(cid)
    # The first grade-2 and grade-8 classes (the demo students' own) get two
    # children with a low-mood streak each; every other class gets one.
    showcase = {c.id for c in [c for c in ctx.classes if c.grade == 2][:1] + [c for c in ctx.classes if c.grade == 8][:1]}
    calendars: dict[int, list[date]] = {}
    for school in ctx.schools:
        closed = scheduling.closed_days(session, school.id, today - timedelta(weeks=WEEKS), today)
        days = [today - timedelta(days=i) for i in range(WEEKS * 7, 0, -1)]
        calendars[school.id] = [d for d in days if scheduling.is_school_day(d, closed)]
    mood, who5 = instruments.get("mood"), instruments.get("who5")
    for cls in ctx.classes:
        kids = roster.get(cls.id, [])
        if not kids:
            continue
        low = set(kids[: 2 if cls.id in showcase else 1])
        days = calendars[cls.school_id]
        _history(session, rng, schedules[(cls.school_id, cls.grade)]["mood"], mood, kids, days, low, cls.grade,
                 lambda streak: _mood_answers(rng, streak))
        if cls.grade >= 7:
            mondays = [d for d in days if d.weekday() == 0]
            _history(session, rng, schedules[(cls.school_id, cls.grade)]["who5"], who5, kids, mondays, low, cls.grade,
                     lambda streak: _who5_answers(rng, streak))
    session.flush()

    demo_classes = [c for c in ctx.classes if c.id in showcase]
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


def _mood_answers(rng, streak: bool) -> dict:
    weather = rng.choice([1, 2, 2]) if streak else rng.choice([2, 3, 4, 4, 5, 5])
    return {"weather": weather, "sleep": rng.choice([1, 2, 3, 3]), "breakfast": rng.choice([1, 3, 3, 3]),
            "friends": rng.choice([2, 3, 3]), "worries": rng.choice([0, 0, 1, 2] if streak else [0, 0, 0, 1]), "talk": 0}


def _who5_answers(rng, streak: bool) -> dict:
    return {item.id: rng.choice([0, 1, 2] if streak else [2, 3, 3, 4, 5]) for item in instruments.get("who5").items}


def _history(session, rng, sched, inst, kids: list[int], days: list, low: set[int], grade: int, answers_for) -> None:
    """Past assignments, answers and streak signals for a class, in three bulk inserts."""
    assignments, plans = [], []
    for cid in kids:
        for i, day in enumerate(days):
            opens, closes, _ = scheduling.window(sched, day)
            missed = rng.random() < 0.1
            assignments.append({
                "schedule_id": sched.id, "child_id": cid, "instrument_code": inst.code, "instrument_version": inst.version,
                "respondent": inst.respondent, "for_date": day, "opens_at": opens, "closes_at": closes, "created_at": opens,
                "status": AssignmentStatus.missed if missed else AssignmentStatus.submitted,
            })
            plans.append(None if missed else (cid, i, opens, cid in low and i >= len(days) - 5))
    ids = session.scalars(insert(SurveyAssignment).returning(SurveyAssignment.id, sort_by_parameter_order=True), assignments).all()
    responses, streaks = [], []
    recent: dict[int, list[bool]] = {}
    for aid, plan in zip(ids, plans, strict=True):
        if plan is None:
            continue
        cid, i, opens, streak = plan
        answers = answers_for(streak)
        result = scoring.score(inst, answers)
        at = opens + timedelta(minutes=rng.randrange(5, 110))
        note = streak and inst.code == "mood" and grade >= 4 and i == len(days) - 1
        responses.append({
            "assignment_id": aid, "child_id": cid, "instrument_code": inst.code, "instrument_version": inst.version,
            "respondent_kind": "student", "respondent_id": cid, "submitted_at": at, "answers": answers,
            "score": result.score, "low": result.low, "critical": False, "help_requested": False,
            "free_text": json.dumps({"note": "さいきん よく眠れない"}, ensure_ascii=False) if note else None,
        })
        window = recent[cid] = (recent.get(cid, []) + [result.low])[-5:]
        if inst.code == "mood" and result.low and sum(window) >= 3:
            streaks.append((len(responses) - 1, cid, SignalKind.low_mood_streak, float(sum(window)), at))
        elif inst.code == "who5" and result.low:
            streaks.append((len(responses) - 1, cid, SignalKind.who5_poor, result.score, at))
    if not responses:
        return
    rids = session.scalars(insert(SurveyResponse).returning(SurveyResponse.id, sort_by_parameter_order=True), responses).all()
    if streaks:
        session.execute(insert(SurveySignal), [
            {"child_id": cid, "kind": kind, "response_id": rids[k], "value": value, "observed_at": at}
            for k, cid, kind, value, at in streaks
        ])
