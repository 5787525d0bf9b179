from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.orm import Base, UTCDateTime


class AuditEvent(Base):
    """One audited action. Rows are never updated or deleted (once chained).

    A row is written with ``mac``, an HMAC of its content under the audit key
    of id ``key_id`` (a key from the environment, never in the database), so
    nobody holding only the database can forge one. The sequencer
    (:func:`portal.audit.service.sequence`) chains it after its transaction
    commits: ``seq`` is the chain's own gapless number (1, 2, 3, ...; the
    primary key's sequence leaves gaps on rollback and orders by start, not
    commit), ``prev_hash`` the previous row's ``hash``, and ``hash`` an HMAC
    over ``prev_hash``, ``seq`` and ``mac``. Signed checkpoints of the log's
    Merkle tree head (``flask --app portal audit checkpoint``) are kept
    outside the database; ``flask --app portal audit verify`` checks all of
    it. ``detail`` never carries names or free text: ids, counts and codes only.

    Migration 0004_audit sealed the rows written before keyed chaining (it
    checked their old SHA-256 chain, then gave them MACs and keyed links).
    """

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_kind: Mapped[str] = mapped_column(String(20))  # staff / guardian / student / system
    actor_id: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(60), index=True)
    # A plain id, not a foreign key: the row is hashed, so the database must
    # never rewrite it (ON DELETE SET NULL broke the chain when a child was
    # purged), and the log must outlive the child's record.
    child_id: Mapped[int | None] = mapped_column(Integer, index=True)
    purpose: Mapped[str | None] = mapped_column(String(60))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(40))
    key_id: Mapped[str | None] = mapped_column(String(16))
    mac: Mapped[str | None] = mapped_column(String(64))
    # Set by the sequencer, in chain order (NULL: written, not chained yet).
    seq: Mapped[int | None] = mapped_column(Integer, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class AuditLogIsAppendOnly(RuntimeError):
    """Raised when code tries to change or remove an audit row."""


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(mapper, connection, target):
    raise AuditLogIsAppendOnly("audit rows are never updated")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(mapper, connection, target):
    raise AuditLogIsAppendOnly("audit rows are never deleted")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes(state):
    """``session.execute(update(AuditEvent))`` / ``delete(AuditEvent)`` skip the mapper events: refuse them too."""
    if (state.is_update or state.is_delete) and state.statement.entity_description.get("entity") is AuditEvent:
        raise AuditLogIsAppendOnly("audit rows are never updated or deleted")
