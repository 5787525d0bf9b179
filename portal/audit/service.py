"""Writing, chaining and verifying the audit log.

Every staff read of a child's record calls :func:`record` (usually through
:func:`record_child_read`) in the same transaction as the read's page, so a
page that renders has always left its row.

The row is written with an HMAC of its content under the audit key (from
the environment, never the database) and no place in the chain, so writing
it takes no lock. :func:`sequence` chains committed rows in order (the
chain's own gapless ``seq``, the previous link, an HMAC over both) in a
short transaction of its own: after each request's response, every minute
from the scheduler, and before verify and checkpoint.
``MIMAMORI_AUDIT_SEQUENCING=inline`` chains in the request instead, under
the chain lock held to commit (the old way; kept for the benchmark).
:func:`verify` checks MACs, links, sequence numbers, the signed checkpoints
(:mod:`portal.audit.checkpoint`) and the records anchored in the log
(:func:`register_anchor`).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import bindparam, event, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from portal.audit import keys as audit_keys
from portal.audit import merkle
from portal.audit.models import AuditEvent
from portal.auth.principal import Principal
from portal.orm import utcnow

log = logging.getLogger(__name__)

GENESIS = "0" * 64
CHAIN_LOCK = 7240001  # PostgreSQL advisory lock of the chain (the sequencer; inline mode)
_T = AuditEvent.__table__
_HASHED = ("at", "actor_kind", "actor_id", "role", "action", "child_id", "purpose", "detail", "request_id")


def _canonical_row(row) -> bytes:
    """The hashed content of a row, from anything with the columns as keys (a dict, a mapping row)."""
    body = {
        "at": row["at"].isoformat(timespec="microseconds"),
        "actor_kind": row["actor_kind"],
        "actor_id": row["actor_id"],
        "role": row["role"],
        "action": row["action"],
        "child_id": row["child_id"],
        "purpose": row["purpose"],
        "detail": row["detail"] or {},
        "request_id": row["request_id"],
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _canonical(ev: AuditEvent) -> bytes:
    return _canonical_row({c: getattr(ev, c) for c in _HASHED})


def row_mac_input(content: bytes) -> bytes:
    return b"mimamori-audit-row-v1\n" + content


def link_input(prev_hash: str, seq: int, mac: str) -> bytes:
    return b"mimamori-audit-link-v1\n" + f"{prev_hash}\n{seq}\n{mac}".encode()


def leaf_data(seq: int, content: bytes) -> bytes:
    """A row as a leaf of the checkpointed Merkle tree: its chain number and content (no key needed)."""
    return f"{seq}\n".encode() + content


def compute_hash(prev_hash: str, ev: AuditEvent) -> str | None:
    """The link a chained row must carry after ``prev_hash`` (needs the audit key that wrote it)."""
    return _keys().mac(ev.key_id, link_input(prev_hash, ev.seq, ev.mac))


def _keys() -> audit_keys.AuditKeys:
    return audit_keys.current()


def _inline() -> bool:
    return has_app_context() and current_app.config.get("MIMAMORI_AUDIT_SEQUENCING") == "inline"


def _lock_chain(session: Session) -> None:
    """Inline mode only: serialise appends under the chain lock, held to the caller's commit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK})


def _head(conn) -> tuple[int, str]:
    row = conn.execute(
        select(_T.c.seq, _T.c.hash).where(_T.c.seq.is_not(None)).order_by(_T.c.seq.desc()).limit(1)
    ).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def _authenticate(row: dict, k: audit_keys.AuditKeys) -> None:
    """Fill ``key_id`` and ``mac`` of a new row (a dict of its columns)."""
    row["key_id"] = k.primary_hmac_id
    row["mac"] = k.mac(k.primary_hmac_id, row_mac_input(_canonical_row(row)))


def _pending(session: Session) -> None:
    session.info["audit_unchained"] = True


def record(
    session: Session,
    actor: Principal,
    action: str,
    *,
    child_id: int | None = None,
    purpose: str | None = None,
    detail: dict | None = None,
    request_id: str | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Write one audit row in the caller's transaction.

    Deferred sequencing (the default): the row is written with its MAC and no
    place in the chain, taking no lock; the sequencer chains it once the
    transaction commits. Inline (``MIMAMORI_AUDIT_SEQUENCING=inline``): it is
    chained here, under the chain lock, which is then held until commit.
    """
    k = _keys()
    values = {
        "at": at or utcnow(),
        "actor_kind": actor.kind,
        "actor_id": actor.id if actor.kind != "system" else None,
        "role": actor.role,
        "action": action,
        "child_id": child_id,
        "purpose": purpose,
        "detail": detail or {},
        "request_id": request_id,
    }
    _authenticate(values, k)
    ev = AuditEvent(**values)
    if _inline():
        _lock_chain(session)
        seq, prev = _head(session)
        ev.seq, ev.prev_hash = seq + 1, prev
        ev.hash = k.mac(ev.key_id, link_input(prev, ev.seq, ev.mac))
    else:
        _pending(session)
    session.add(ev)
    session.flush()
    return ev


def record_child_read(
    session: Session,
    actor: Principal,
    child_id: int,
    what: str,
    *,
    purpose: str | None = None,
    request_id: str | None = None,
) -> AuditEvent:
    """A staff member looked at a child's record (``what`` names the view)."""
    return record(
        session,
        actor,
        "child.read",
        child_id=child_id,
        purpose=purpose,
        detail={"view": what},
        request_id=request_id,
    )


def record_child_reads(
    session: Session,
    actor: Principal,
    child_ids,
    what: str,
    *,
    purpose: str | None = None,
    request_id: str | None = None,
) -> int:
    """One audited read per child, for pages about many children at once.

    Plain rows written in one executemany, so a list of a thousand children
    costs a fixed number of statements.
    """
    ids = list(dict.fromkeys(child_ids))
    if not ids:
        return 0
    k = _keys()
    common = {
        "at": utcnow(),
        "actor_kind": actor.kind,
        "actor_id": actor.id if actor.kind != "system" else None,
        "role": actor.role,
        "action": "child.read",
        "purpose": purpose,
        "request_id": request_id,
    }
    rows = []
    for cid in ids:
        row = {**common, "child_id": cid, "detail": {"view": what}}
        _authenticate(row, k)
        rows.append(row)
    _insert_rows(session, k, rows)
    return len(rows)


def record_many(session: Session, actor: Principal, entries: list[dict]) -> int:
    """Several audit rows in one executemany: each entry has ``action`` and optionally
    ``child_id``, ``purpose``, ``detail``, ``request_id``, ``at`` (a backfill, such as the demo's)."""
    if not entries:
        return 0
    k = _keys()
    now = utcnow()
    rows = []
    for e in entries:
        row = {
            "at": e.get("at") or now, "actor_kind": actor.kind,
            "actor_id": actor.id if actor.kind != "system" else None, "role": actor.role, "action": e["action"],
            "child_id": e.get("child_id"), "purpose": e.get("purpose"), "detail": e.get("detail") or {},
            "request_id": e.get("request_id"),
        }
        _authenticate(row, k)
        rows.append(row)
    _insert_rows(session, k, rows)
    return len(rows)


def _insert_rows(session: Session, k, rows: list[dict]) -> None:
    """One executemany of authenticated rows: chained here (inline) or left for the sequencer."""
    if _inline():
        _lock_chain(session)
        seq, prev = _head(session)
        for row in rows:
            seq += 1
            row["seq"], row["prev_hash"] = seq, prev
            row["hash"] = prev = k.mac(row["key_id"], link_input(prev, seq, row["mac"]))
    else:
        _pending(session)
    session.execute(insert(AuditEvent.__table__), rows)  # Core executemany, in chain order


# -- the sequencer --------------------------------------------------------------------


SEQUENCE_BATCH = 5000
SEQUENCE_ROUNDS = 20  # a sequencer run ends after this many batches; the next run goes on


def sequence(bind: Engine | Connection | Session | None = None, *, wait: bool = True) -> int:
    """Chain every committed, unchained row in order; the number chained.

    Runs in a short transaction of its own, after the rows' transactions have
    committed (after each request that wrote audit rows, by the scheduler
    every minute, and before verify and checkpoint). Safe with several
    sequencers at once: on PostgreSQL they take the chain lock (``wait=False``:
    one that finds it taken leaves the work to its holder, which looks again
    for new rows before it lets go), on SQLite ``BEGIN IMMEDIATE``; every
    update is also guarded by ``seq IS NULL`` and ``seq`` is unique. A row
    whose MAC does not verify under a configured key is left unchained: it
    was not written by the application (``audit verify`` reports it).
    """
    if isinstance(bind, Session):
        bind = bind.get_bind()
    engine = bind.engine if isinstance(bind, Connection) else (bind or _default_engine())
    k = _keys()
    total = 0
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            if wait:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK})
            elif not conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": CHAIN_LOCK}):
                conn.rollback()
                return 0
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        seq, prev = _head(conn)
        refused: set[int] = set()
        for _round in range(SEQUENCE_ROUNDS):
            # Unchained rows in id order; each round also sees rows committed since the last
            # (PostgreSQL hands out ids at insert, not at commit: a lower id may commit later).
            rows = [r for r in conn.execute(
                select(_T).where(_T.c.seq.is_(None)).order_by(_T.c.id).limit(SEQUENCE_BATCH + len(refused))
            ).mappings() if r["id"] not in refused]
            if not rows:
                break
            updates = []
            for r in rows:
                expected = k.mac(r["key_id"], row_mac_input(_canonical_row(r))) if r["key_id"] else None
                if expected is None or r["mac"] is None or not hmac.compare_digest(expected, r["mac"]):
                    log.warning("audit row %s has no valid MAC: left unchained", r["id"])
                    refused.add(r["id"])
                    continue
                seq += 1
                link = k.mac(r["key_id"], link_input(prev, seq, r["mac"]))
                updates.append({"_id": r["id"], "_seq": seq, "_prev": prev, "_hash": link})
                prev = link
            if updates:
                res = conn.execute(
                    update(_T).where(_T.c.id == bindparam("_id"), _T.c.seq.is_(None))
                    .values(seq=bindparam("_seq"), prev_hash=bindparam("_prev"), hash=bindparam("_hash")),
                    updates,
                )
                if conn.dialect.supports_sane_multi_rowcount and res.rowcount != len(updates):
                    # another writer chained some of them (it cannot, under the lock): leave it to the next run
                    conn.rollback()
                    return 0
                total += len(updates)
        conn.commit()
    return total


def _default_engine() -> Engine:
    from portal.extensions import db

    return db.engine


class _Coalescer:
    """One sequencer run at a time in this process; pokes during a run make it run once more.

    Under load many requests commit while one sequencer runs: they are
    chained by its next round, not by as many runs of their own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = False
        self._again = False

    def poke(self, engine: Engine) -> None:
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running = True
        try:
            while True:
                sequence(engine, wait=False)
                with self._lock:
                    if not self._again:
                        self._running = False
                        return
                    self._again = False
        except BaseException:
            with self._lock:
                self._running = False
            raise


_coalescer = _Coalescer()


def sequence_soon(engine: Engine) -> None:
    """Chain what was just committed (never raises: the scheduler chains anything left)."""
    try:
        _coalescer.poke(engine)
    except OperationalError as exc:  # busy (SQLite) or the database went away: a later run chains them
        log.warning("audit sequencing postponed: %s", type(exc.orig).__name__ if exc.orig else "error")
    except Exception:  # noqa: BLE001 (the caller's work is committed; the job sequences later)
        log.exception("audit sequencing failed; the scheduler will retry")


@event.listens_for(Session, "after_commit")
def _sequence_after_commit(session: Session) -> None:
    """Chain what this transaction wrote, now that it is committed.

    In a request, after the response has been sent (:func:`portal.audit.init_app`
    registers it on the response's close), so no page waits for it; elsewhere
    (commands, jobs, tests) at once.
    """
    if not session.info.pop("audit_unchained", False):
        return
    for obj in list(session.identity_map.values()):  # their place in the chain is being written
        if isinstance(obj, AuditEvent):
            session.expire(obj, ["seq", "prev_hash", "hash"])
    engine = session.get_bind()
    if has_request_context() and g.get("audit_sequence_on_close") is not None:
        g.audit_sequence_on_close.add(engine)
        return
    sequence_soon(engine)


# -- verifying ------------------------------------------------------------------------


# -- records anchored in the log ---------------------------------------------------------

_anchors: dict[str, object] = {}


def register_anchor(name: str, fn) -> None:
    """A domain's append-only records, checked against their audit rows by ``audit verify``.

    ``fn(session) -> list[str]`` returns one message per record that has no
    matching chained audit row (inserted or altered straight in the
    database) or per audit row whose record is gone (deleted). The audit row
    is keyed and chained, so the record is as tamper-evident as the log.
    """
    _anchors[name] = fn


@dataclass
class Finding:
    kind: str  # gap / removed / altered / rechained / forged / unkeyed / truncated / rewritten / checkpoint
    message: str
    seq: int | None = None
    id: int | None = None


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    reason: str | None = None
    intact: int = 0  # rows in order before the first broken one
    findings: list[Finding] = field(default_factory=list)
    tree_size: int = 0
    tree_root: bytes = merkle.EMPTY_ROOT
    checkpoints: int = 0  # checkpoints checked against the log
    covered: int = 0  # rows covered by the largest valid checkpoint
    unchained: int = 0  # rows written, waiting for the sequencer

    @property
    def uncovered(self) -> int:
        """Rows written after the last checkpoint: these can still be cut unseen."""
        return max(self.tree_size - self.covered, 0)


MAX_FINDINGS = 50


def verify(session: Session, batch: int = 5000, *, checkpoints=None, sequence_first: bool = True) -> VerifyResult:
    """Check the whole log: each row's MAC, each link, the sequence numbers, and the checkpoints.

    ``checkpoints``: signed checkpoints (:class:`portal.audit.note.Checkpoint`)
    to hold the log to, or None for the ones in the checkpoint directory.
    Every problem found is listed (up to a limit), by kind:

    * ``gap``: sequence numbers missing: rows were deleted;
    * ``removed``: a row's previous link is not the row before it;
    * ``altered``: a row's content does not match its MAC;
    * ``rechained``: a link is not authenticated by any audit key (the chain
      was recomputed without the key), or an unkeyed row follows keyed ones;
    * ``forged``: a row no configured key wrote (left unchained);
    * ``truncated``: a signed checkpoint covers more rows than the log has;
    * ``rewritten``: the log's first N rows are not the N a checkpoint signed;
    * ``checkpoint``: a checkpoint file whose signature does not verify;
    * ``unanchored``: a record a domain anchors in the log (:func:`register_anchor`,
      e.g. consent events) without its audit row, or deleted from under it.
    """
    from portal.audit import checkpoint as ckpt

    if sequence_first:
        try:
            sequence(session.get_bind(), wait=True)
        except OperationalError as exc:
            log.warning("audit sequencing before verify failed: %s", type(exc.orig).__name__ if exc.orig else "error")
    k = _keys()
    result = VerifyResult(ok=True, checked=0)
    findings = result.findings

    def found(kind: str, message: str, ev=None) -> None:
        if result.first_broken_id is None and ev is not None:
            result.first_broken_id, result.reason, result.intact = ev.id, message, result.checked
        if len(findings) < MAX_FINDINGS:
            findings.append(Finding(kind, message, ev.seq if ev is not None else None, ev.id if ev is not None else None))

    if checkpoints is None:
        checkpoints, bad = ckpt.load_all(k)
        for path, why in bad:
            found("checkpoint", f"checkpoint file {path.name}: {why}")
    pending = sorted(checkpoints, key=lambda c: c.size)
    result.checkpoints = len(pending)

    tree = merkle.TreeHasher()
    prev, last_seq = GENESIS, 0

    def check_checkpoints() -> None:
        while pending and pending[0].size == tree.size:
            c = pending.pop(0)
            if c.root == tree.root():
                result.covered = max(result.covered, c.size)
            else:
                found("rewritten", f"the first {c.size} rows are not the {c.size} rows the checkpoint of that size "
                                   "signed: the log was rewritten before that point")

    check_checkpoints()
    while True:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            break
        for ev in rows:
            if ev.seq != last_seq + 1:
                missing = f"{last_seq + 1}" if ev.seq == last_seq + 2 else f"{last_seq + 1} to {ev.seq - 1}"
                found("gap", f"sequence number {missing} missing before row {ev.id}: rows were deleted", ev)
            content = _canonical(ev)
            if ev.key_id is None:
                found("rechained", f"row {ev.id} (seq {ev.seq}) carries no audit key: "
                                   "the chain was recomputed without the key", ev)
            else:
                want_mac = k.mac(ev.key_id, row_mac_input(content))
                if want_mac is None:
                    found("rechained", f"row {ev.id} (seq {ev.seq}) names an audit key that is not configured "
                                       f"({ev.key_id}): forged, or the key was dropped from MIMAMORI_AUDIT_KEY", ev)
                elif ev.mac is None or not hmac.compare_digest(want_mac, ev.mac):
                    found("altered", f"row {ev.id} (seq {ev.seq}): row content does not match its MAC "
                                     "(a row was altered)", ev)
                elif ev.prev_hash != prev:
                    found("removed", f"row {ev.id} (seq {ev.seq}): previous hash does not match "
                                     "(a row was removed or reordered)", ev)
                elif not hmac.compare_digest(k.mac(ev.key_id, link_input(ev.prev_hash, ev.seq, ev.mac)),
                                             ev.hash or ""):
                    found("rechained", f"row {ev.id} (seq {ev.seq}): its link is not authenticated by the audit key "
                                       "(the chain was recomputed without the key)", ev)
            prev = ev.hash or GENESIS
            last_seq = ev.seq
            result.checked += 1
            tree.add(leaf_data(ev.seq, content))
            check_checkpoints()
        session.expunge_all()
    result.tree_size, result.tree_root = tree.size, tree.root()
    for c in pending:  # larger than the log
        found("truncated", f"a signed checkpoint covers {c.size} rows but the log has {tree.size}: "
                           f"the last {c.size - tree.size} rows were removed")
    # Rows not chained: waiting for the sequencer, or not written by the application.
    for ev in session.scalars(select(AuditEvent).where(AuditEvent.seq.is_(None)).order_by(AuditEvent.id)):
        want = k.mac(ev.key_id, row_mac_input(_canonical(ev))) if ev.key_id else None
        if want is not None and ev.mac is not None and hmac.compare_digest(want, ev.mac):
            result.unchained += 1
        else:
            found("forged", f"row {ev.id} was not written by the application (no valid MAC under any audit key)", ev)
    session.expunge_all()
    for name, fn in sorted(_anchors.items()):
        for message in fn(session):
            found("unanchored", f"{name}: {message}")
    result.ok = not findings
    if result.first_broken_id is None:
        result.intact = result.checked
    return result


def search(
    session: Session,
    *,
    action: str | None = None,
    child_id: int | None = None,
    role: str | None = None,
    actor_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    q = select(AuditEvent)
    if action:
        q = q.where(AuditEvent.action == action)
    if child_id:
        q = q.where(AuditEvent.child_id == child_id)
    if role:
        q = q.where(AuditEvent.role == role)
    if actor_id:
        q = q.where(AuditEvent.actor_id == actor_id)
    if since:
        q = q.where(AuditEvent.at >= since)
    if until:
        q = q.where(AuditEvent.at < until)
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    rows = session.scalars(q.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)).all()
    return list(rows), int(total or 0)


def reads_of_child(session: Session, child_id: int) -> list[tuple[str, datetime]]:
    """Who looked at a child's record, by role and time (never staff names)."""
    rows = session.execute(
        select(AuditEvent.role, AuditEvent.at)
        .where(AuditEvent.child_id == child_id, AuditEvent.actor_kind == "staff")
        .order_by(AuditEvent.at.desc())
    ).all()
    return [(r.role, r.at) for r in rows]
