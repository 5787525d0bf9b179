"""Surveys: schedules, closed days, assignments, responses, signals and help alerts.

Every table holding a child's data has a ``child_id`` so withdrawing consent
for ``wellbeing_survey`` purges it with set-based deletes; a :class:`HelpAlert`
is the exception: a request for help is not consent-based and is kept.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.crypto import EncryptedText
from portal.orm import Base, UTCDateTime, utcnow


class Frequency(enum.StrEnum):
    school_day = "school_day"
    weekly = "weekly"
    termly = "termly"


class AssignmentStatus(enum.StrEnum):
    open = "open"
    submitted = "submitted"
    missed = "missed"  # closed without an answer


class AlertReason(enum.StrEnum):
    talk_request = "talk_request"
    critical_answer = "critical_answer"


class SignalKind(enum.StrEnum):
    low_mood_streak = "low_mood_streak"  # low mood on 3 of the last 5 check-ins
    who5_poor = "who5_poor"  # WHO-5 at or below 50
    help_request = "help_request"
    critical_answer = "critical_answer"
    family_worries = "family_worries"


def _enum(e, length=20):
    return Enum(e, native_enum=False, length=length)


class SurveySchedule(Base):
    """Which instrument a school's grade answers, how often and when."""

    __tablename__ = "survey_schedule"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), index=True)
    grade: Mapped[int] = mapped_column(Integer)  # 1-9, municipality-wide
    instrument_code: Mapped[str] = mapped_column(String(30))
    frequency: Mapped[Frequency] = mapped_column(_enum(Frequency))
    weekday: Mapped[int | None] = mapped_column(Integer)  # 0=Monday, weekly only
    window_start: Mapped[time] = mapped_column(Time)  # Asia/Tokyo wall clock
    window_end: Mapped[time] = mapped_column(Time)
    days_open: Mapped[int] = mapped_column(Integer, default=0)  # closes N days later (family questionnaires)
    reminder_minutes: Mapped[int | None] = mapped_column(Integer)  # remind this long before closing
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    school = relationship("School")


class ClosedDay(Base):
    """A day a school is closed beyond weekends and national holidays (休業日)."""

    __tablename__ = "survey_closed_day"
    __table_args__ = (UniqueConstraint("school_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(100), default="")


class SurveyAssignment(Base):
    """One child's turn to answer one instrument on one day."""

    __tablename__ = "survey_assignment"
    __table_args__ = (
        UniqueConstraint("schedule_id", "child_id", "for_date"),
        Index("ix_survey_assignment_status_closes", "status", "closes_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("survey_schedule.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    instrument_code: Mapped[str] = mapped_column(String(30))
    instrument_version: Mapped[str] = mapped_column(String(40))
    respondent: Mapped[str] = mapped_column(String(10))  # student / guardian
    for_date: Mapped[date] = mapped_column(Date)
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[AssignmentStatus] = mapped_column(_enum(AssignmentStatus), default=AssignmentStatus.open)
    # Half-done answers (resume); may hold free text, so encrypted.
    progress: Mapped[str | None] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    schedule: Mapped[SurveySchedule] = relationship()


class SurveyResponse(Base):
    """A submitted answer set: one per assignment (the unique constraint)."""

    __tablename__ = "survey_response"
    __table_args__ = (Index("ix_survey_response_child_instrument", "child_id", "instrument_code", "submitted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("survey_assignment.id", ondelete="CASCADE"), unique=True
    )
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    instrument_code: Mapped[str] = mapped_column(String(30))
    instrument_version: Mapped[str] = mapped_column(String(40))
    respondent_kind: Mapped[str] = mapped_column(String(10))  # student / guardian
    respondent_id: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answers: Mapped[dict] = mapped_column(JSON)  # item id -> option value(s); no free text
    free_text: Mapped[str | None] = mapped_column(EncryptedText)  # JSON {item id: text}
    score: Mapped[float | None] = mapped_column(Float)
    low: Mapped[bool] = mapped_column(Boolean, default=False)  # at or below the instrument's threshold
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    help_requested: Mapped[bool] = mapped_column(Boolean, default=False)


class SurveySignal(Base):
    """A derived signal screening may read (through the consent gate)."""

    __tablename__ = "survey_signal"
    __table_args__ = (Index("ix_survey_signal_child_kind", "child_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    kind: Mapped[SignalKind] = mapped_column(_enum(SignalKind, 30))
    response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_response.id", ondelete="CASCADE"))
    value: Mapped[float | None] = mapped_column(Float)
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class HelpAlert(Base):
    """A child asked for help (or answered critically): someone must act today."""

    __tablename__ = "survey_help_alert"
    __table_args__ = (Index("ix_survey_help_alert_open", "school_id", "acknowledged_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"))
    class_id: Mapped[int | None] = mapped_column(ForeignKey("school_class.id"))
    # SET NULL, not CASCADE: deleting the answers (a consent purge) never deletes the request for help.
    response_id: Mapped[int | None] = mapped_column(ForeignKey("survey_response.id", ondelete="SET NULL"))
    reason: Mapped[AlertReason] = mapped_column(_enum(AlertReason))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    ack_note: Mapped[str | None] = mapped_column(EncryptedText)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    child = relationship("Child")
    acknowledged_by = relationship("Staff")
