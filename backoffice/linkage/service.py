"""The review queue and the per-child view of linked records."""

from __future__ import annotations

import json
from collections import defaultdict

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from backoffice.linkage.catalogue import load
from backoffice.linkage.models import (
    ImportBatch,
    LinkDecision,
    LinkedRecord,
    ReviewCandidate,
    ReviewItem,
)
from portal import once
from portal.audit.service import record as audit
from portal.audit.service import record_child_read, record_child_reads
from portal.auth.access import visible_child_ids
from portal.auth.principal import Principal
from portal.orm import utcnow
from portal.people.models import Child, Role

PURPOSE = "data_linkage"
#: Who may see a child's linked records (besides the gate and the school scope):
#: the data steward (all children), and the school's support team
#: (school lead, counsellor, social worker) for children of their schools.
#: A homeroom teacher sees flags from screening, not the raw records.
VIEW_ROLES = (Role.data_steward.value, Role.school_lead.value, Role.counsellor.value, Role.social_worker.value)


class ReviewError(Exception):
    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


def _offered_items():
    """SELECT of the review items with a candidate still in the gate.

    A proposed link is processing for ``data_linkage``: an item whose every
    candidate has withdrawn, lapsed or never consented is not shown (it waits
    for the purge; a POST can still reject it)."""
    from consent.gate import consented_child_ids

    return select(ReviewCandidate.item_id).where(ReviewCandidate.child_id.in_(consented_child_ids(PURPOSE)))


def open_items(session: Session, *, limit: int = 50, offset: int = 0) -> tuple[list[ReviewItem], int]:
    offered = ReviewItem.id.in_(_offered_items())
    total = session.scalar(select(func.count(ReviewItem.id)).where(offered)) or 0
    items = session.scalars(
        select(ReviewItem).options(selectinload(ReviewItem.candidates), selectinload(ReviewItem.record))
        .where(offered).order_by(ReviewItem.id).limit(limit).offset(offset)
    ).all()
    return list(items), total


def review_detail(session: Session, actor: Principal, item_id: int) -> dict | None:
    """The record and its candidate children side by side (an audited read of each candidate)."""
    item = session.get(ReviewItem, item_id)
    if item is None:
        return None
    from consent.gate import consented_child_ids

    fields = json.loads(item.match_fields or "{}")
    # A candidate whose consent was withdrawn or has lapsed since matching is not offered.
    children = {c.id: c for c in session.scalars(
        select(Child).where(Child.id.in_([c.child_id for c in item.candidates]),
                            Child.id.in_(consented_child_ids(PURPOSE))))}
    rows = [{"candidate": cand, "child": children[cand.child_id]} for cand in item.candidates
            if cand.child_id in children]
    if not rows:
        return None
    record_child_reads(session, actor, [r["child"].id for r in rows], "linkage.review", purpose=PURPOSE)
    spec = load().source(item.source)
    return {"item": item, "fields": fields, "candidates": rows, "spec": spec}


def decide(session: Session, actor: Principal, item_id: int, decision: str, child_id: int | None = None) -> LinkedRecord | None:
    """Link the record to one candidate, or reject it. Remembered by row
    identity, so a re-import does not ask again; audited."""
    from consent.gate import is_consented

    # The item's row lock first, then the item as it is now: of two stewards deciding at once, the
    # second finds it decided (gone) and is told so.
    item = once.fresh(session, ReviewItem, item_id) if once.lock(session, ReviewItem, item_id) else None
    if item is None:
        raise ReviewError(_l("This review item no longer exists (it may have been decided already)."))
    record = item.record
    if decision == "link":
        if child_id not in {c.child_id for c in item.candidates}:
            raise ReviewError(_l("Choose one of the candidate children."))
        if not is_consented(session, child_id, PURPOSE):
            raise ReviewError(_l("This child no longer has consent for data linkage."))
    elif decision != "reject":
        raise ReviewError(_l("Unknown decision."))
    remembered = session.scalar(select(LinkDecision).where(
        LinkDecision.source == record.source, LinkDecision.row_key == record.row_key))
    if remembered is None:
        remembered = LinkDecision(source=record.source, row_key=record.row_key, decision=decision)
        session.add(remembered)
    remembered.decision = decision
    remembered.child_id = child_id if decision == "link" else None
    remembered.decided_by = actor.id if actor.kind == "staff" else None
    remembered.decided_at = utcnow()
    audit(session, actor, f"linkage.review.{decision}", child_id=child_id if decision == "link" else None,
          purpose=PURPOSE, detail={"item": item.id, "source": record.source, "batch": record.batch_id,
                                   "row": record.source_row})
    session.delete(item)
    if decision == "link":
        record.child_id = child_id
        record.method = "clerical"
        record.status = "linked"
        session.flush()
        return record
    session.delete(record)
    session.flush()
    return None


def child_records(session: Session, actor: Principal, child: Child) -> dict[str, list[dict]]:
    """A child's linked records by source, newest first, through the gate and
    the principal's scope; writes the audit row. Empty without consent.

    Plain values (``record_date``, ``data``, ``method``, ``source``), read in
    one query, so the page costs the same whatever the number of records."""
    from consent.gate import consented_child_ids

    allowed = select(Child.id).where(
        Child.id == child.id,
        Child.id.in_(visible_child_ids(actor)),
        Child.id.in_(consented_child_ids(PURPOSE)),
    )
    record_child_read(session, actor, child.id, "linkage.child_records", purpose=PURPOSE)
    if session.scalar(allowed) is None:
        return {}
    out: dict[str, list[dict]] = defaultdict(list)
    for r in session.execute(
        select(LinkedRecord.source, LinkedRecord.record_date, LinkedRecord.data, LinkedRecord.method)
        .where(LinkedRecord.child_id == child.id, LinkedRecord.status == "linked")
        .order_by(LinkedRecord.source, LinkedRecord.record_date.desc(), LinkedRecord.id.desc())
    ):
        out[r.source].append({"source": r.source, "record_date": r.record_date, "data": dict(r.data or {}),
                              "method": r.method})
    return dict(out)


def history(session: Session, *, limit: int = 50) -> list[ImportBatch]:
    """The latest imports with who made them (one query for the batches, one for the staff)."""
    return list(session.scalars(
        select(ImportBatch).options(selectinload(ImportBatch.actor), selectinload(ImportBatch.rolled_back_actor))
        .order_by(ImportBatch.id.desc()).limit(limit)))


def batch_detail(session: Session, batch_id: int) -> ImportBatch | None:
    return session.scalar(
        select(ImportBatch).options(selectinload(ImportBatch.actor), selectinload(ImportBatch.rolled_back_actor))
        .where(ImportBatch.id == batch_id))
