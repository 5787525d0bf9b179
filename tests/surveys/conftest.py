"""Factories for the surveys tests: schedules, consented children, open assignments."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from consent.testing import give_consent
from portal.auth.principal import SYSTEM
from portal.people.models import Role
from surveys import scheduling
from surveys.models import Frequency

# Monday 2026-06-08, 08:30 in Tokyo (a school day, no holiday)
MONDAY_0830 = datetime(2026, 6, 7, 23, 30, tzinfo=UTC)


class SurveyFactory:
    def __init__(self, session, make):
        self.s = session
        self.make = make

    def schedule(self, school_class, instrument="mood", *, frequency=Frequency.school_day, weekday=None,
                 start=time(8, 0), end=time(10, 0), days_open=0, reminder=None,
                 starts_on=date(2026, 4, 1), ends_on=date(2027, 3, 31)):
        return scheduling.create_schedule(
            self.s,
            SYSTEM,
            scheduling.ScheduleInput(
                school_id=school_class.school_id, grade=school_class.grade, instrument_code=instrument,
                frequency=frequency, weekday=weekday, window_start=start, window_end=end,
                days_open=days_open, reminder_minutes=reminder, starts_on=starts_on, ends_on=ends_on,
            ),
        )

    def consented_child(self, school_class, **kw):
        child = self.make.child(school_class, **kw)
        self.make.guardian(child)
        give_consent(self.s, child, "wellbeing_survey")
        return child

    def setup(self, grade=2, instrument="mood", *, consent=True, now=MONDAY_0830, **sched_kw):
        """A class with a teacher, a counsellor for the school, a child, a schedule, and the assignment opened."""
        teacher, cls = self.make.teacher_with_class(grade=grade)
        counsellor = self.make.staff(Role.counsellor, schools=[cls.school])
        lead = self.make.staff(Role.school_lead, schools=[cls.school])
        child = self.consented_child(cls) if consent else self.make.child(cls)
        if not consent:
            self.make.guardian(child)
        sched = self.schedule(cls, instrument, **sched_kw)
        scheduling.open_due(self.s, now)
        return {"teacher": teacher, "cls": cls, "counsellor": counsellor, "lead": lead, "child": child, "schedule": sched}


@pytest.fixture
def sv(session, make):
    return SurveyFactory(session, make)


MOOD_OK = {"weather": "4", "sleep": "3", "breakfast": "3", "friends": "3", "worries": "0", "talk": "0"}


def open_now(session, schedule, child, *, hours: int = 2, at=None):
    """An assignment open at the real current time, or around ``at`` (for browser tests on the live server)."""
    from datetime import timedelta

    from portal.orm import utcnow
    from surveys import instruments
    from surveys.models import SurveyAssignment
    from surveys.scheduling import TOKYO

    inst = instruments.get(schedule.instrument_code)
    now = at or utcnow()
    a = SurveyAssignment(
        schedule_id=schedule.id, child_id=child.id, instrument_code=inst.code, instrument_version=inst.version,
        respondent=inst.respondent, for_date=now.astimezone(TOKYO).date(), opens_at=now - timedelta(hours=1),
        closes_at=now + timedelta(hours=hours),
    )
    session.add(a)
    session.flush()
    return a
