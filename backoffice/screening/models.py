"""Screening: rule sets (versioned, four eyes), runs, flags and the optional model.

A :class:`Flag` is a reason to look at a child, never a decision. It keeps
the rule-set version and the facts that fired it (``reasons``: codes, not
prose; :func:`backoffice.screening.service.describe_reasons` renders them in
the reader's language), and it stays open until the facts no longer hold or
the school decides (``backoffice.screening.service.resolve_flag``).

One flag is one *episode* of one reason (``reason_key``: ``rule:<code>`` for a
rule, ``manual:<uuid>`` for a teacher's flag). A run never opens a second flag
for the same child and key while an earlier one's facts still hold
(``facts_cleared_at`` is NULL), whether that flag is open or was decided.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, Enum, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.crypto import EncryptedText
from portal.orm import Base, UTCDateTime, utcnow


def _enum(e):
    return Enum(e, native_enum=False, length=20, validate_strings=True)


class FlagSource(enum.StrEnum):
    rule = "rule"
    manual = "manual"
    model = "model"


class FlagStatus(enum.StrEnum):
    open = "open"
    resolved = "resolved"


class Resolution(enum.StrEnum):
    """Why a flag was resolved (``Flag.resolution``)."""

    school_decided = "school_decided"  # the teacher / school assessed the child
    facts_cleared = "facts_cleared"  # a run found the facts no longer hold
    consent_withdrawn = "consent_withdrawn"  # kept only until the purge deletes it


class Outcome(enum.StrEnum):
    """What the school decided (the label the model learns from)."""

    confirmed = "confirmed"  # support is needed: the flag was right
    not_needed = "not_needed"  # no support needed: the flag is overridden


class RuleSetStatus(enum.StrEnum):
    draft = "draft"  # being edited by its author
    submitted = "submitted"  # waiting for a second person's approval
    active = "active"  # the one in use (at most one)
    retired = "retired"  # was active, replaced by a later version
    rejected = "rejected"  # the reviewer sent it back


class RuleSet(Base):
    """One version of the screening rules (the text and its parsed form)."""

    __tablename__ = "screening_rule_set"
    __table_args__ = (
        # At most one active version, whatever two approvers do at the same moment.
        Index("uq_screening_rule_set_one_active", "status", unique=True,
              postgresql_where=text("status = 'active'"), sqlite_where=text("status = 'active'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(Text, default="")  # the rule language text
    rules: Mapped[list] = mapped_column(JSON, default=list)  # parsed, validated
    status: Mapped[RuleSetStatus] = mapped_column(_enum(RuleSetStatus), default=RuleSetStatus.draft, index=True)
    author_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_note: Mapped[str] = mapped_column(String(500), default="")


class ScreeningRun(Base):
    """One run of the rules over every consented child (counts only)."""

    __tablename__ = "screening_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_set_version_id: Mapped[int | None] = mapped_column(ForeignKey("screening_rule_set.id"))
    trigger: Mapped[str] = mapped_column(String(20))  # page | cli | nightly | test
    actor_kind: Mapped[str] = mapped_column(String(10))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)


class Flag(Base):
    """A child to look at, with why (the casework engineer's contract).

    ``reasons`` is a list of ``{"indicator": code, "fact": value, "params":
    {...}}`` dicts (plus ``rule`` / ``rule_label`` on rule flags), rendered
    per locale by ``describe_reasons(flag, locale)``. A manual flag's words
    are in ``manual_text`` (encrypted), never in ``reasons``.
    """

    __tablename__ = "screening_flag"
    __table_args__ = (
        Index("ix_screening_flag_child_key", "child_id", "reason_key"),
        Index("ix_screening_flag_status_urgency", "status", "urgency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    source: Mapped[FlagSource] = mapped_column(_enum(FlagSource))
    rule_set_version_id: Mapped[int | None] = mapped_column(ForeignKey("screening_rule_set.id"), index=True)
    rule_code: Mapped[str | None] = mapped_column(String(60), index=True)
    reason_key: Mapped[str] = mapped_column(String(100))
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    manual_text: Mapped[str | None] = mapped_column(EncryptedText)
    # indicator values when raised (the decision table the model learns from)
    features: Mapped[dict] = mapped_column(JSON, default=dict)
    # which consent purposes the reasons rest on (the gate and the purgers read these)
    needs_linkage: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_survey: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[FlagStatus] = mapped_column(_enum(FlagStatus), default=FlagStatus.open)
    urgency: Mapped[int] = mapped_column(Integer, default=2)  # 1 low, 2 medium, 3 high
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    raised_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("screening_run.id", ondelete="SET NULL"))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    facts_cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[Resolution | None] = mapped_column(_enum(Resolution))
    resolution_reason: Mapped[str | None] = mapped_column(EncryptedText)  # the school's words
    outcome: Mapped[Outcome | None] = mapped_column(_enum(Outcome))
    resolved_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    # the optional model: calibrated probability and main factors (never decides)
    model_score: Mapped[float | None] = mapped_column(Float)
    model_factors: Mapped[list | None] = mapped_column(JSON)

    child = relationship("Child")
    rule_set = relationship(RuleSet)

    @property
    def is_open(self) -> bool:
        return self.status == FlagStatus.open


class ScreeningModel(Base):
    """A trained model: its parameters as JSON (no pickles), its card and its switch."""

    __tablename__ = "screening_model"
    __table_args__ = (
        # At most one model on, whatever two stewards do at the same moment.
        Index("uq_screening_model_one_enabled", "enabled", unique=True,
              postgresql_where=text("enabled"), sqlite_where=text("enabled")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(40))
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    trained_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    n_decisions: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict] = mapped_column(JSON, default=dict)  # features, scaler, coefficients, calibration
    card: Mapped[dict] = mapped_column(JSON, default=dict)  # metrics, comparisons, by group
    beats_baselines: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    switched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    switched_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
