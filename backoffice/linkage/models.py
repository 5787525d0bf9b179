"""Import batches, linked records, the review queue and remembered decisions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.crypto import EncryptedText
from portal.orm import Base, UTCDateTime, utcnow
from portal.people.models import Staff


class ImportBatch(Base):
    """One import of one file (the history: who, when, file hash, counts)."""

    __tablename__ = "linkage_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(30), index=True)
    filename: Mapped[str] = mapped_column(String(255), default="")
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_format: Mapped[str] = mapped_column(String(10), default="csv")
    encoding: Mapped[str | None] = mapped_column(String(20))
    actor_kind: Mapped[str] = mapped_column(String(10))  # staff | system
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default="completed")  # completed | rolled_back
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    rolled_back_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rolled_back_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))

    actor: Mapped[Staff | None] = relationship(foreign_keys=[actor_id], lazy="raise")
    rolled_back_actor: Mapped[Staff | None] = relationship(foreign_keys=[rolled_back_by], lazy="raise")

    @property
    def name(self) -> str:
        """How the export names the batch."""
        return f"{self.source}-{self.id}"


class LinkedRecord(Base):
    """A row of an administrative file linked (or proposed) to a consented child.

    ``data`` holds only the columns the catalogue keeps (``keep: yes``);
    ``secret`` those marked ``encrypted`` (free text), encrypted at rest.
    """

    __tablename__ = "linkage_record"
    __table_args__ = (
        UniqueConstraint("source", "row_key"),
        Index("ix_linkage_record_child_source", "child_id", "source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("linkage_batch.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(30))
    source_row: Mapped[int] = mapped_column(Integer)
    row_key: Mapped[str] = mapped_column(String(64))
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(20))  # student_no | atena_no | probabilistic | clerical
    score: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(10))  # linked | review
    record_date: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date, index=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    secret: Mapped[str | None] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    batch: Mapped[ImportBatch] = relationship()


class ReviewItem(Base):
    """A record in the grey zone, waiting for the data steward.

    ``match_fields`` (encrypted JSON text) keeps the identifying columns
    (``keep: match``) only while the item is open.
    """

    __tablename__ = "linkage_review"

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("linkage_record.id", ondelete="CASCADE"), unique=True)
    source: Mapped[str] = mapped_column(String(30), index=True)
    match_fields: Mapped[str | None] = mapped_column(EncryptedText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    record: Mapped[LinkedRecord] = relationship()
    candidates: Mapped[list[ReviewCandidate]] = relationship(
        back_populates="item", cascade="all, delete-orphan", order_by="ReviewCandidate.score.desc()"
    )


class ReviewCandidate(Base):
    __tablename__ = "linkage_review_candidate"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("linkage_review.id", ondelete="CASCADE"), index=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    score: Mapped[float] = mapped_column(Float)
    agreement: Mapped[dict] = mapped_column(JSON, default=dict)  # field -> exact | close | differs | missing

    item: Mapped[ReviewItem] = relationship(back_populates="candidates")


class LinkDecision(Base):
    """A data steward's decision on a row, remembered across re-imports."""

    __tablename__ = "linkage_decision"
    __table_args__ = (UniqueConstraint("source", "row_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(30))
    row_key: Mapped[str] = mapped_column(String(64))
    decision: Mapped[str] = mapped_column(String(10))  # link | reject
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id", ondelete="CASCADE"), index=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImportJob(Base):
    """An upload being imported outside the request (the progress bar).

    The file waits in ``instance/uploads`` under its SHA-256; the status
    and the progress live here, in the database, so any web worker can
    answer the page's polling while a background thread of another one
    does the work."""

    __tablename__ = "linkage_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(30))
    filename: Mapped[str] = mapped_column(String(255), default="")
    file_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10), default="queued", index=True)  # queued | running | done | failed
    phase: Mapped[str] = mapped_column(String(10), default="queued")  # reading | linking | saving
    rows_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_total: Mapped[int | None] = mapped_column(Integer)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("linkage_batch.id", ondelete="SET NULL"))
    already_imported: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(String(500))  # the refusal, in the uploader's language
    locale: Mapped[str] = mapped_column(String(5), default="ja")
    actor_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    # The web process whose thread runs the job ("host:pid"): a job whose
    # process is gone (a restart, a crash) is shown as interrupted, not running.
    runner: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
