"""Schedules and the school calendar; opening, closing and reminding assignments.

Times of day are Asia/Tokyo wall clock; everything stored is UTC. Every
function takes the clock (``now``) as an argument, so the scheduler, the CLI
and the tests move time the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.orm import Session

from consent.gate import consented_child_ids
from portal import once
from portal.audit import service as audit
from portal.auth.access import current_year_id_subquery
from portal.auth.principal import Principal
from portal.people.models import Enrolment, School, SchoolClass, SchoolKind
from surveys import instruments
from surveys.models import (
    AssignmentStatus,
    ClosedDay,
    Frequency,
    SurveyAssignment,
    SurveySchedule,
)

TOKYO = ZoneInfo("Asia/Tokyo")
PURPOSE = "wellbeing_survey"
# Terms of the Japanese three-term year: a termly instrument opens on the
# first school day on or after each start.
TERM_STARTS = ((4, 1), (9, 1), (1, 8))


class ScheduleError(ValueError):
    """A schedule that cannot be saved; ``str()`` is a message for the user."""


# -- the calendar ---------------------------------------------------------------


def national_holidays(years) -> frozenset[date]:
    """Japan's public holidays in these years (computed once per set of years)."""
    return _national_holidays(tuple(sorted(set(years))))


@lru_cache(maxsize=16)
def _national_holidays(years: tuple[int, ...]) -> frozenset[date]:
    return frozenset(holidays.country_holidays("JP", years=list(years)))


def closed_days(session: Session, school_id: int, start: date, end: date) -> set[date]:
    """Days a school is closed between start and end (inclusive), weekends aside."""
    days = set(
        session.scalars(
            select(ClosedDay.day).where(ClosedDay.school_id == school_id, ClosedDay.day.between(start, end))
        )
    )
    jp = national_holidays(range(start.year, end.year + 1))
    days.update(d for d in jp if start <= d <= end)
    return days


def is_school_day(day: date, closed: set[date]) -> bool:
    return day.weekday() < 5 and day not in closed


def add_closed_days(session: Session, actor: Principal, school_id: int, start: date, end: date, reason: str) -> int:
    """Mark a range of days closed (e.g. 夏季休業); days already closed are kept."""
    if end < start:
        raise ScheduleError(_l("The last day is before the first day."))
    if (end - start).days > 366:
        raise ScheduleError(_l("A closed period can be at most a year long."))
    once.lock(session, School, school_id)  # a double-submitted form: the second finds the days already closed
    existing = set(
        session.scalars(select(ClosedDay.day).where(ClosedDay.school_id == school_id, ClosedDay.day.between(start, end)))
    )
    rows = [
        {"school_id": school_id, "day": start + timedelta(days=i), "reason": reason[:100]}
        for i in range((end - start).days + 1)
        if start + timedelta(days=i) not in existing
    ]
    if rows:
        session.execute(insert(ClosedDay), rows)
    audit.record(session, actor, "surveys.closed_days_added", detail={"school_id": school_id, "days": len(rows)})
    session.flush()
    return len(rows)


def remove_closed_day(session: Session, actor: Principal, school_id: int, day: date) -> bool:
    """Make a closed day a school day again; False if it was not closed.

    If the day is today and a check-in window is still open, the next pass
    of the assignment job opens it.
    """
    res = session.execute(
        delete(ClosedDay)
        .where(ClosedDay.school_id == school_id, ClosedDay.day == day)
        .execution_options(synchronize_session=False)
    )
    removed = (res.rowcount or 0) > 0
    if removed:
        audit.record(session, actor, "surveys.closed_day_removed", detail={"school_id": school_id})
    session.flush()
    return removed


def is_due(schedule: SurveySchedule, day: date, closed: set[date]) -> bool:
    """Whether a schedule has an assignment on ``day``."""
    if not (schedule.starts_on <= day <= schedule.ends_on) or not is_school_day(day, closed):
        return False
    if schedule.frequency == Frequency.school_day:
        return True
    if schedule.frequency == Frequency.weekly:
        return day.weekday() == schedule.weekday
    # termly: the first school day on or after a term start
    for month, dom in TERM_STARTS:
        d = date(day.year, month, dom)
        if d > day:
            continue
        while not is_school_day(d, closed) and d < day:
            d += timedelta(days=1)
        if d == day:
            return True
    return False


def window(schedule: SurveySchedule, day: date) -> tuple[datetime, datetime, datetime | None]:
    """(opens_at, closes_at, remind_at) in UTC for the assignment of ``day``."""
    opens = datetime.combine(day, schedule.window_start, TOKYO)
    closes = datetime.combine(day + timedelta(days=schedule.days_open), schedule.window_end, TOKYO)
    remind = closes - timedelta(minutes=schedule.reminder_minutes) if schedule.reminder_minutes else None
    if remind is not None and remind <= opens:
        remind = None
    return opens.astimezone(ZoneInfo("UTC")), closes.astimezone(ZoneInfo("UTC")), (
        remind.astimezone(ZoneInfo("UTC")) if remind else None
    )


# -- schedules ----------------------------------------------------------------------


@dataclass
class ScheduleInput:
    school_id: int
    grade: int
    instrument_code: str
    frequency: Frequency
    window_start: time
    window_end: time
    starts_on: date
    ends_on: date
    weekday: int | None = None
    days_open: int = 0
    reminder_minutes: int | None = None


def _days_can_coincide(a: SurveySchedule | ScheduleInput, b: SurveySchedule) -> bool:
    if Frequency.weekly in (a.frequency, b.frequency) and a.frequency == b.frequency:
        return a.weekday == b.weekday
    return True


def overlapping(session: Session, data: ScheduleInput, *, exclude_id: int | None = None) -> SurveySchedule | None:
    """An active schedule of the same school, grade and instrument that could fall on the same day."""
    q = select(SurveySchedule).where(
        SurveySchedule.active.is_(True),
        SurveySchedule.school_id == data.school_id,
        SurveySchedule.grade == data.grade,
        SurveySchedule.instrument_code == data.instrument_code,
        SurveySchedule.starts_on <= data.ends_on,
        SurveySchedule.ends_on >= data.starts_on,
    )
    if exclude_id is not None:
        q = q.where(SurveySchedule.id != exclude_id)
    return next((s for s in session.scalars(q) if _days_can_coincide(data, s)), None)


def _validate(session: Session, data: ScheduleInput, *, exclude_id: int | None = None) -> School:
    """Check a schedule (new or edited); raise ScheduleError with a message for the user."""
    school = session.get(School, data.school_id)
    if school is None:
        raise ScheduleError(_l("Choose a school."))
    # The school's lock before the overlap check: two schedules sent at once cannot both pass it.
    once.lock(session, School, school.id)
    try:
        inst = instruments.get(data.instrument_code)
    except KeyError:
        raise ScheduleError(_l("Choose a questionnaire.")) from None
    grades = range(1, 7) if school.kind == SchoolKind.elementary else range(7, 10)
    if data.grade not in grades:
        raise ScheduleError(_l("This school has no grade %(g)d.", g=data.grade))
    if not inst.for_grade(data.grade):
        raise ScheduleError(_l("This questionnaire is not meant for grade %(g)d.", g=data.grade))
    if data.ends_on < data.starts_on:
        raise ScheduleError(_l("The last day is before the first day."))
    if not 0 <= data.days_open <= 60:
        raise ScheduleError(_l("A questionnaire can stay open for 0 to 60 days."))
    if data.days_open == 0 and data.window_end <= data.window_start:
        raise ScheduleError(_l("The answering window must end after it starts."))
    if data.frequency == Frequency.weekly:
        if data.weekday is None or not 0 <= data.weekday <= 4:
            raise ScheduleError(_l("Choose a school weekday for a weekly questionnaire."))
    else:
        data.weekday = None
    if data.frequency == Frequency.school_day and data.days_open:
        raise ScheduleError(_l("A questionnaire asked every school day must close the same day."))
    if data.reminder_minutes is not None and data.reminder_minutes <= 0:
        raise ScheduleError(_l("The reminder must come some minutes before the window closes."))
    clash = overlapping(session, data, exclude_id=exclude_id)
    if clash is not None:
        raise ScheduleError(
            _l(
                "This overlaps an existing schedule for the same grade and questionnaire (%(start)s to %(end)s).",
                start=clash.starts_on.isoformat(),
                end=clash.ends_on.isoformat(),
            )
        )
    return school


def create_schedule(session: Session, actor: Principal, data: ScheduleInput) -> SurveySchedule:
    school = _validate(session, data)
    sched = SurveySchedule(
        school_id=data.school_id,
        grade=data.grade,
        instrument_code=data.instrument_code,
        frequency=data.frequency,
        weekday=data.weekday,
        window_start=data.window_start,
        window_end=data.window_end,
        days_open=data.days_open,
        reminder_minutes=data.reminder_minutes,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
        created_by_staff_id=actor.id if actor.kind == "staff" else None,
    )
    session.add(sched)
    session.flush()
    audit.record(session, actor, "surveys.schedule_created", detail={"schedule_id": sched.id, "school_id": school.id})
    return sched


# What an edit may change; school, grade and questionnaire stay (stop the
# schedule and create another to change those: the answers already given
# belong to the old one).
EDITABLE = (
    "frequency", "weekday", "window_start", "window_end", "days_open", "reminder_minutes", "starts_on", "ends_on",
)


def schedule_input(schedule: SurveySchedule) -> ScheduleInput:
    return ScheduleInput(
        school_id=schedule.school_id,
        grade=schedule.grade,
        instrument_code=schedule.instrument_code,
        frequency=Frequency(schedule.frequency),
        weekday=schedule.weekday,
        window_start=schedule.window_start,
        window_end=schedule.window_end,
        days_open=schedule.days_open,
        reminder_minutes=schedule.reminder_minutes,
        starts_on=schedule.starts_on,
        ends_on=schedule.ends_on,
    )


def update_schedule(session: Session, actor: Principal, schedule: SurveySchedule, data: ScheduleInput) -> list[str]:
    """Change when and how often a schedule runs; returns the names of the fields changed.

    Assignments already opened keep their window (children may be answering
    them); the change applies from the next assignment the job opens. A
    stopped schedule cannot be edited.
    """
    if not schedule.active:
        raise ScheduleError(_l("This schedule was stopped and can no longer be changed."))
    data.school_id, data.grade, data.instrument_code = schedule.school_id, schedule.grade, schedule.instrument_code
    _validate(session, data, exclude_id=schedule.id)
    changed = [name for name in EDITABLE if getattr(schedule, name) != getattr(data, name)]
    for name in changed:
        setattr(schedule, name, getattr(data, name))
    if changed:
        audit.record(session, actor, "surveys.schedule_changed", detail={"schedule_id": schedule.id, "fields": changed})
    session.flush()
    return changed


def deactivate_schedule(session: Session, actor: Principal, schedule: SurveySchedule) -> None:
    schedule.active = False
    session.execute(
        update(SurveyAssignment)
        .where(SurveyAssignment.schedule_id == schedule.id, SurveyAssignment.status == AssignmentStatus.open)
        .values(status=AssignmentStatus.missed)
        .execution_options(synchronize_session=False)
    )
    audit.record(session, actor, "surveys.schedule_stopped", detail={"schedule_id": schedule.id})
    session.flush()


# -- the jobs' work -------------------------------------------------------------------


def _tokyo_date(now: datetime) -> date:
    return now.astimezone(TOKYO).date()


def open_due(session: Session, now: datetime) -> int:
    """Create today's assignments whose window has opened, for consented children. Idempotent."""
    today = _tokyo_date(now)
    created = 0
    schedules = session.scalars(
        select(SurveySchedule).where(
            SurveySchedule.active.is_(True),
            SurveySchedule.starts_on <= today,
            SurveySchedule.ends_on >= today - timedelta(days=60),
        )
    ).all()
    calendars: dict[int, set[date]] = {}
    for sched in schedules:
        inst = instruments.get(sched.instrument_code)
        first = today - timedelta(days=sched.days_open)
        if sched.school_id not in calendars:
            calendars[sched.school_id] = closed_days(session, sched.school_id, today - timedelta(days=70), today)
        for i in range(sched.days_open + 1):
            day = first + timedelta(days=i)
            if not is_due(sched, day, calendars[sched.school_id]):
                continue
            opens, closes, remind = window(sched, day)
            if not opens <= now < closes:
                continue
            children = (
                select(Enrolment.child_id)
                .join(SchoolClass, SchoolClass.id == Enrolment.class_id)
                .where(
                    SchoolClass.school_id == sched.school_id,
                    SchoolClass.grade == sched.grade,
                    Enrolment.school_year_id == current_year_id_subquery(),
                    Enrolment.child_id.in_(consented_child_ids(PURPOSE)),
                    Enrolment.child_id.not_in(
                        select(SurveyAssignment.child_id).where(
                            SurveyAssignment.schedule_id == sched.id, SurveyAssignment.for_date == day
                        )
                    ),
                )
            )
            ids = list(session.scalars(children))
            if not ids:
                continue
            session.execute(
                insert(SurveyAssignment),
                [
                    {
                        "schedule_id": sched.id,
                        "child_id": cid,
                        "instrument_code": inst.code,
                        "instrument_version": inst.version,
                        "respondent": inst.respondent,
                        "for_date": day,
                        "opens_at": opens,
                        "closes_at": closes,
                        "remind_at": remind,
                        "status": AssignmentStatus.open,
                        "created_at": now,
                    }
                    for cid in ids
                ],
            )
            created += len(ids)
    session.flush()
    return created


def close_due(session: Session, now: datetime) -> int:
    """Close every open assignment whose window has ended (set-based)."""
    res = session.execute(
        update(SurveyAssignment)
        .where(SurveyAssignment.status == AssignmentStatus.open, SurveyAssignment.closes_at <= now)
        .values(status=AssignmentStatus.missed, progress=None)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return res.rowcount or 0


def remind_due(session: Session, now: datetime) -> int:
    """Mark reminders due; guardians (who have e-mail) are also written to.

    Students see the reminder on their page (children have no e-mail here).
    """
    from surveys import notify

    due = and_(
        SurveyAssignment.status == AssignmentStatus.open,
        SurveyAssignment.remind_at <= now,
        SurveyAssignment.closes_at > now,
        SurveyAssignment.reminded_at.is_(None),
    )
    guardian_children = list(
        session.scalars(select(SurveyAssignment.child_id).where(due, SurveyAssignment.respondent == "guardian"))
    )
    res = session.execute(
        update(SurveyAssignment).where(due).values(reminded_at=now).execution_options(synchronize_session=False)
    )
    if guardian_children:
        notify.remind_guardians(session, guardian_children)
    session.flush()
    return res.rowcount or 0


def tick(session: Session, now: datetime) -> dict[str, int]:
    """One pass of the assignment job: close, open, remind."""
    return {"closed": close_due(session, now), "opened": open_due(session, now), "reminded": remind_due(session, now)}
