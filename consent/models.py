"""Consent model: purposes, versioned documents, append-only events, data requests.

Effective consent is never stored: it is computed from :class:`ConsentEvent`
rows (``consent.gate``). Published versions, their documents and events are
immutable; the ORM refuses to update or delete them.
"""

from __future__ import annotations

import enum
import hashlib
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
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.crypto import EncryptedText
from portal.orm import Base, UTCDateTime, utcnow


class Party(enum.StrEnum):
    guardian = "guardian"
    child = "child"


class Action(enum.StrEnum):
    grant = "grant"
    withdraw = "withdraw"


class Channel(enum.StrEnum):
    online = "online"
    paper = "paper"
    data_request = "data_request"  # stop of use (利用停止) decided by the steward


class OldConsent(enum.StrEnum):
    """What happens to consent given on earlier versions when a version is published."""

    stands = "stands"
    lapses = "lapses"


# The lapse window (the product rule, stated on the purposes pages). When consent lapses
# (a material new version whose publisher chose so, or a child who now decides too and
# has not consented), the child leaves the gate at once: nothing held for the purpose is
# read. It is kept, unused, for this many days (or the purpose's retention after
# withdrawal, if longer) so that a family that consents again in time loses nothing;
# then consent.service.run_due_purges (the scheduler, every 15 minutes) deletes it.
LAPSE_WINDOW_DAYS = 30


class ConsentPurpose(Base):
    """A purpose families consent to. Texts are per locale ({"ja": …, "en": …})."""

    __tablename__ = "consent_purpose"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    title: Mapped[dict] = mapped_column(JSON, default=dict)
    summary: Mapped[dict] = mapped_column(JSON, default=dict)  # plain-language explanation
    child_summary: Mapped[dict] = mapped_column(JSON, default=dict)  # in words for a junior-high student
    data_items: Mapped[dict] = mapped_column(JSON, default=dict)  # {locale: [item, …]}
    sources: Mapped[dict] = mapped_column(JSON, default=dict)  # {locale: [source, …]}
    users: Mapped[dict] = mapped_column(JSON, default=dict)  # {locale: [who uses it, …]}
    retention: Mapped[dict] = mapped_column(JSON, default=dict)  # {locale: text}
    retention_days: Mapped[int] = mapped_column(Integer, default=0)  # after withdrawal; 0 = at once
    child_from_grade: Mapped[int] = mapped_column(Integer, default=7)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sort_order: Mapped[int] = mapped_column(Integer, default=100)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    versions: Mapped[list[ConsentVersion]] = relationship(
        back_populates="purpose", order_by="ConsentVersion.version"
    )

    @property
    def lapse_days(self) -> int:
        """Days data is kept, unused, after consent lapses (see ``LAPSE_WINDOW_DAYS``)."""
        return max(LAPSE_WINDOW_DAYS, self.retention_days or 0)

    def text(self, attr: str, locale: str):
        values = getattr(self, attr) or {}
        return values.get(locale) or values.get("ja") or next(iter(values.values()), "")


class ConsentVersion(Base):
    """A published version of a purpose's consent text (all its locales)."""

    __tablename__ = "consent_version"
    __table_args__ = (UniqueConstraint("purpose_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose_id: Mapped[int] = mapped_column(ForeignKey("consent_purpose.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    material: Mapped[bool] = mapped_column(Boolean, default=True)
    old_consent: Mapped[OldConsent] = mapped_column(
        Enum(OldConsent, native_enum=False, length=10), default=OldConsent.stands
    )
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    purpose: Mapped[ConsentPurpose] = relationship(back_populates="versions")
    documents: Mapped[list[ConsentDocument]] = relationship(back_populates="version")


def document_hash(title: str, body: str, child_body: str = "") -> str:
    """SHA-256 of a document's text, stored when it is published."""
    return hashlib.sha256(f"{title}\n\n{body}\n\n{child_body}".encode()).hexdigest()


class ConsentDocument(Base):
    """The text of one version in one locale. Immutable once written."""

    __tablename__ = "consent_document"
    __table_args__ = (UniqueConstraint("version_id", "locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("consent_version.id"), index=True)
    locale: Mapped[str] = mapped_column(String(5))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    child_body: Mapped[str] = mapped_column(Text, default="")  # for the student's own page
    sha256: Mapped[str] = mapped_column(String(64))

    version: Mapped[ConsentVersion] = relationship(back_populates="documents")

    def verify(self) -> bool:
        return self.sha256 == document_hash(self.title, self.body, self.child_body)


class ConsentEvent(Base):
    """One grant or withdrawal. Append-only."""

    __tablename__ = "consent_event"
    __table_args__ = (
        Index("ix_consent_event_latest", "purpose_id", "child_id", "party", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    purpose_id: Mapped[int] = mapped_column(ForeignKey("consent_purpose.id"))
    party: Mapped[Party] = mapped_column(Enum(Party, native_enum=False, length=10))
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardian.id", ondelete="SET NULL"))
    action: Mapped[Action] = mapped_column(Enum(Action, native_enum=False, length=10))
    version: Mapped[int] = mapped_column(Integer)
    document_id: Mapped[int] = mapped_column(ForeignKey("consent_document.id"))
    locale: Mapped[str] = mapped_column(String(5))
    at: Mapped[datetime] = mapped_column(UTCDateTime)  # when it was given (paper: the signed date)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[Channel] = mapped_column(Enum(Channel, native_enum=False, length=20))
    form_no: Mapped[str | None] = mapped_column(String(40))
    signer: Mapped[str | None] = mapped_column(EncryptedText)  # paper: who signed
    recorded_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    purpose: Mapped[ConsentPurpose] = relationship()
    document: Mapped[ConsentDocument] = relationship()


class PurgeStatus(enum.StrEnum):
    pending = "pending"
    done = "done"
    cancelled = "cancelled"  # consent was given again before it was due


class PurgeCause(enum.StrEnum):
    withdrawal = "withdrawal"  # a party withdrew
    lapse = "lapse"  # consent lapsed (a material new version, or the child now decides too)


class PendingPurge(Base):
    """Deletion of a child's data for a purpose, due at the end of the retention window.

    ``event_id`` is the withdrawal, or for a lapse the grant that lapsed.
    """

    __tablename__ = "consent_pending_purge"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    purpose_id: Mapped[int] = mapped_column(ForeignKey("consent_purpose.id"))
    event_id: Mapped[int] = mapped_column(ForeignKey("consent_event.id"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[PurgeStatus] = mapped_column(
        Enum(PurgeStatus, native_enum=False, length=10), default=PurgeStatus.pending
    )
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    cause: Mapped[PurgeCause] = mapped_column(
        Enum(PurgeCause, native_enum=False, length=20), default=PurgeCause.withdrawal,
        server_default=PurgeCause.withdrawal.value,
    )


class RequestKind(enum.StrEnum):
    disclosure = "disclosure"  # 開示
    correction = "correction"  # 訂正
    stop_use = "stop_use"  # 利用停止


class RequestStatus(enum.StrEnum):
    open = "open"
    completed = "completed"
    refused = "refused"


class DataRequest(Base):
    """A family's data-rights request, handled by a data steward within 30 days."""

    __tablename__ = "data_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardian.id", ondelete="SET NULL"))
    kind: Mapped[RequestKind] = mapped_column(Enum(RequestKind, native_enum=False, length=20))
    purpose_id: Mapped[int | None] = mapped_column(ForeignKey("consent_purpose.id"))
    details: Mapped[str | None] = mapped_column(EncryptedText)
    status: Mapped[RequestStatus] = mapped_column(
        Enum(RequestStatus, native_enum=False, length=20), default=RequestStatus.open, index=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_on: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str | None] = mapped_column(EncryptedText)
    handled_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disclosure_ready: Mapped[bool] = mapped_column(Boolean, default=False)
    # The data steward released what a disclosure withholds from a guardian
    # (a child's request for help: APPI art. 78(1)(i)) for this request.
    withheld_released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withheld_released_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    purpose: Mapped[ConsentPurpose | None] = relationship()


class ImmutableRecordError(RuntimeError):
    pass


@event.listens_for(ConsentEvent, "before_update")
@event.listens_for(ConsentDocument, "before_update")
@event.listens_for(ConsentVersion, "before_update")
def _refuse_update(mapper, connection, target):
    raise ImmutableRecordError(f"{type(target).__name__} rows are immutable")


@event.listens_for(ConsentEvent, "before_delete")
@event.listens_for(ConsentDocument, "before_delete")
@event.listens_for(ConsentVersion, "before_delete")
def _refuse_delete(mapper, connection, target):
    raise ImmutableRecordError(f"{type(target).__name__} rows are never deleted")
