"""Casework: cases, assessments, school case meetings, support plans, referrals.

A case follows one child from a flag (or a help request) through the
teacher's assessment, the school's decision, a support plan and its
reviews, to closure. Every change is a row in :class:`CaseEvent`; the case
row carries a version column, so two people saving at once get a conflict
instead of a lost update (SQLAlchemy's ``version_id_col``).

Every table holding a child's data has a ``child_id``; free text about a
child is encrypted at rest (:class:`portal.crypto.EncryptedText`).
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.crypto import EncryptedText
from portal.orm import Base, UTCDateTime, utcnow


def _enum(e, length=20):
    return Enum(e, native_enum=False, length=length)


class CaseStatus(enum.StrEnum):
    flagged = "flagged"
    assessed = "assessed"
    decided = "decided"
    plan_active = "plan_active"
    under_review = "under_review"
    closed = "closed"
    reopened = "reopened"


OPEN_STATUSES = tuple(s for s in CaseStatus if s != CaseStatus.closed)
# Statuses waiting for the teacher's assessment.
AWAITING_ASSESSMENT = (CaseStatus.flagged, CaseStatus.reopened)


class CaseSource(enum.StrEnum):
    flag = "flag"  # a screening flag
    alert = "alert"  # a help request from a check-in
    manual = "manual"  # a member of staff opened it


class CloseReason(enum.StrEnum):
    no_concern = "no_concern"
    support_complete = "support_complete"
    moved_away = "moved_away"
    consent_withdrawn = "consent_withdrawn"
    other = "other"


class Proposal(enum.StrEnum):
    support_needed = "support_needed"
    keep_watching = "keep_watching"
    no_concern = "no_concern"


class Concern(enum.StrEnum):
    none = "none"
    some = "some"
    serious = "serious"


class Decision(enum.StrEnum):
    support_plan = "support_plan"  # make a support plan
    keep_watching = "keep_watching"  # watch, review on a date
    close = "close"  # no concern: close the case


class ReferralTarget(enum.StrEnum):
    counsellor = "counsellor"
    social_worker = "social_worker"
    family_support_centre = "family_support_centre"  # 子ども家庭センター (municipal)
    resource = "resource"  # a service from the resource catalogue


# Referrals that leave the school need the family's share_with_partners consent.
EXTERNAL_TARGETS = (ReferralTarget.family_support_centre, ReferralTarget.resource)


class ReferralStatus(enum.StrEnum):
    in_progress = "in_progress"
    accepted = "accepted"
    rejected = "rejected"
    done = "done"
    revoked = "revoked"


OPEN_REFERRAL = (ReferralStatus.in_progress, ReferralStatus.accepted)


class Case(Base):
    __tablename__ = "casework_case"
    __table_args__ = (
        Index("ix_casework_case_school_status", "school_id", "status"),
        Index("ix_casework_case_child_status", "child_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"))
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"))
    # The homeroom teacher when the case opened: owner of the assessment.
    teacher_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    source: Mapped[CaseSource] = mapped_column(_enum(CaseSource))
    flag_id: Mapped[int | None] = mapped_column(ForeignKey("screening_flag.id", ondelete="SET NULL"), index=True)
    alert_id: Mapped[int | None] = mapped_column(Integer)  # surveys HelpAlert
    urgency: Mapped[int] = mapped_column(Integer, default=0)
    # Which consented data the case came from: withdrawing it closes the case.
    uses_linkage: Mapped[bool] = mapped_column(Boolean, default=False)
    uses_survey: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus))
    flagged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assessment_due: Mapped[date | None] = mapped_column(Date)
    assessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision: Mapped[Decision | None] = mapped_column(_enum(Decision))
    review_due: Mapped[date | None] = mapped_column(Date)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    close_reason: Mapped[CloseReason | None] = mapped_column(_enum(CloseReason, 30))
    close_note: Mapped[str | None] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}

    child = relationship("Child")
    school = relationship("School")
    teacher = relationship("Staff")


class CaseEvent(Base):
    """The case's history: every change of status and every step, append-only."""

    __tablename__ = "casework_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("casework_case.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    actor_role: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)  # codes and ids, never free text

    actor = relationship("Staff")


class Assessment(Base):
    __tablename__ = "casework_assessment"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("casework_case.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Per domain: a level of concern and the teacher's notes (encrypted).
    attendance: Mapped[Concern] = mapped_column(_enum(Concern), default=Concern.none)
    attendance_note: Mapped[str | None] = mapped_column(EncryptedText)
    learning: Mapped[Concern] = mapped_column(_enum(Concern), default=Concern.none)
    learning_note: Mapped[str | None] = mapped_column(EncryptedText)
    health: Mapped[Concern] = mapped_column(_enum(Concern), default=Concern.none)
    health_note: Mapped[str | None] = mapped_column(EncryptedText)
    relationships: Mapped[Concern] = mapped_column(_enum(Concern), default=Concern.none)
    relationships_note: Mapped[str | None] = mapped_column(EncryptedText)
    family_contact: Mapped[Concern] = mapped_column(_enum(Concern), default=Concern.none)
    family_contact_note: Mapped[str | None] = mapped_column(EncryptedText)
    child_voice: Mapped[str | None] = mapped_column(EncryptedText)  # the child's own words
    notes: Mapped[str | None] = mapped_column(EncryptedText)
    proposal: Mapped[Proposal] = mapped_column(_enum(Proposal))
    review_date: Mapped[date | None] = mapped_column(Date)
    no_concern_reason: Mapped[str | None] = mapped_column(EncryptedText)

    author = relationship("Staff")


DOMAINS = ("attendance", "learning", "health", "relationships", "family_contact")


class MeetingStatus(enum.StrEnum):
    planned = "planned"
    held = "held"


class Meeting(Base):
    """A school case meeting (校内委員会)."""

    __tablename__ = "casework_meeting"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"), index=True)
    held_on: Mapped[date] = mapped_column(Date)
    status: Mapped[MeetingStatus] = mapped_column(_enum(MeetingStatus), default=MeetingStatus.planned)
    other_attendees: Mapped[str | None] = mapped_column(EncryptedText)  # people without an account
    created_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    school = relationship("School")
    attendees: Mapped[list[MeetingAttendee]] = relationship(cascade="all, delete-orphan")
    items: Mapped[list[MeetingItem]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", order_by="MeetingItem.id"
    )


class MeetingAttendee(Base):
    __tablename__ = "casework_meeting_attendee"
    __table_args__ = (UniqueConstraint("meeting_id", "staff_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("casework_meeting.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))

    staff = relationship("Staff")


class MeetingItem(Base):
    """A case on a meeting's agenda, and the school's decision on it."""

    __tablename__ = "casework_meeting_item"
    __table_args__ = (UniqueConstraint("meeting_id", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("casework_meeting.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("casework_case.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    decision: Mapped[Decision | None] = mapped_column(_enum(Decision))
    decision_note: Mapped[str | None] = mapped_column(EncryptedText)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    meeting: Mapped[Meeting] = relationship(back_populates="items")
    case = relationship("Case")


class SupportPlan(Base):
    __tablename__ = "casework_plan"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("casework_case.id", ondelete="CASCADE"), unique=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    review_date: Mapped[date] = mapped_column(Date)

    goals: Mapped[list[PlanGoal]] = relationship(cascade="all, delete-orphan", order_by="PlanGoal.id")
    actions: Mapped[list[PlanAction]] = relationship(cascade="all, delete-orphan", order_by="PlanAction.id")


class PlanGoal(Base):
    __tablename__ = "casework_plan_goal"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("casework_plan.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(EncryptedText)


class PlanAction(Base):
    __tablename__ = "casework_plan_action"
    __table_args__ = (Index("ix_casework_plan_action_due", "owner_id", "done_at", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("casework_plan.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("casework_case.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(EncryptedText)
    owner_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    due_on: Mapped[date] = mapped_column(Date)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    owner = relationship("Staff")


class Referral(Base):
    __tablename__ = "casework_referral"
    __table_args__ = (Index("ix_casework_referral_receiver", "receiver_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("casework_case.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("school.id"))
    target: Mapped[ReferralTarget] = mapped_column(_enum(ReferralTarget, 30))
    receiver_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))  # counsellor / SSW
    service_id: Mapped[int | None] = mapped_column(Integer)  # resources.Service, for a catalogue resource
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(EncryptedText)
    status: Mapped[ReferralStatus] = mapped_column(_enum(ReferralStatus), default=ReferralStatus.in_progress)
    response_note: Mapped[str | None] = mapped_column(EncryptedText)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answer_due: Mapped[date] = mapped_column(Date)  # the receiver should answer by then
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    responded_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    receiver = relationship("Staff", foreign_keys=[receiver_id])


class Notice(Base):
    """An in-app notice to a member of staff (the school's decision, a closure, reminders).

    Holds a code and ids only; the words are rendered in the reader's language.
    """

    __tablename__ = "casework_notice"
    __table_args__ = (
        Index("ix_casework_notice_staff", "staff_id", "read_at"),
        UniqueConstraint("staff_id", "dedupe_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("casework_case.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
