"""Consent operations: purposes, publishing versions, recording grants and withdrawals, purges.

Plain functions taking a ``Session`` and the acting
:class:`~portal.auth.principal.Principal`; they flush, never commit. Every
refusal is a :class:`ConsentError` carrying a message for the person.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, literal, select, union_all, update
from sqlalchemy.orm import Session, selectinload

from consent import hooks
from consent.gate import child_consent_required, consented_child_ids, is_consented
from consent.models import (
    Action,
    Channel,
    ConsentDocument,
    ConsentEvent,
    ConsentPurpose,
    ConsentVersion,
    OldConsent,
    Party,
    PendingPurge,
    PurgeCause,
    PurgeStatus,
    document_hash,
)
from portal import once
from portal.audit import service as audit
from portal.auth.principal import SYSTEM, Principal
from portal.i18n import TOKYO
from portal.orm import utcnow
from portal.people.models import Child, GuardianChild, Role

log = logging.getLogger(__name__)
LOCALES = ("ja", "en")

def lapse_window_days(purpose: ConsentPurpose) -> int:
    """The lapse window of a purpose (``consent.models.LAPSE_WINDOW_DAYS``)."""
    return purpose.lapse_days


class ConsentError(Exception):
    """A refusal with a message for the person (a lazy string)."""

    code = "error"

    def __init__(self, message=None):
        super().__init__(self.code)
        self.message = message if message is not None else self.default

    default = _l("This could not be recorded.")


class AlreadyRecorded(ConsentError):
    code = "already"
    default = _l("This was already recorded. Nothing was changed.")


class ChangedMeanwhile(ConsentError):
    code = "changed"
    default = _l(
        "Someone else in your family changed this consent while you were reading. "
        "Nothing was changed: check the current state below and choose again."
    )


class WithdrawalBeforeGrant(ConsentError):
    code = "before_grant"
    default = _l("A withdrawal cannot be dated before the consent it withdraws.")


class NotAllowed(ConsentError):
    code = "not_allowed"
    default = _l("You cannot record consent for this child.")


class NoDocument(ConsentError):
    code = "no_document"
    default = _l("This purpose has no published consent text yet.")


# -- purposes and versions --------------------------------------------------------


def purpose_by_code(session: Session, code: str) -> ConsentPurpose | None:
    return session.scalar(select(ConsentPurpose).where(ConsentPurpose.code == code))


def active_purposes(session: Session) -> list[ConsentPurpose]:
    return list(
        session.scalars(
            select(ConsentPurpose)
            .where(ConsentPurpose.active.is_(True))
            .order_by(ConsentPurpose.sort_order, ConsentPurpose.code)
        )
    )


def current_version(session: Session, purpose_id: int) -> ConsentVersion | None:
    return session.scalar(
        select(ConsentVersion)
        .where(ConsentVersion.purpose_id == purpose_id)
        .order_by(ConsentVersion.version.desc())
        .limit(1)
    )


def current_versions(session: Session, purpose_ids: list[int]) -> dict[int, ConsentVersion]:
    """Each purpose's latest version, in one query."""
    latest = (
        select(ConsentVersion.purpose_id, func.max(ConsentVersion.version).label("v"))
        .where(ConsentVersion.purpose_id.in_(purpose_ids))
        .group_by(ConsentVersion.purpose_id)
        .subquery()
    )
    rows = session.scalars(
        select(ConsentVersion).join(
            latest, (latest.c.purpose_id == ConsentVersion.purpose_id) & (latest.c.v == ConsentVersion.version)
        )
    )
    return {v.purpose_id: v for v in rows}


def document_for(session: Session, purpose: ConsentPurpose, locale: str) -> ConsentDocument | None:
    """The current version's text in this locale (Japanese when there is none)."""
    version = current_version(session, purpose.id)
    if version is None:
        return None
    docs = {d.locale: d for d in version.documents}
    return docs.get(locale) or docs.get("ja") or next(iter(docs.values()), None)


def _same_texts(version: ConsentVersion, texts: dict[str, tuple[str, str, str]]) -> bool:
    """Whether ``texts`` are word for word the documents of ``version`` (every locale)."""
    docs = {d.locale: (d.title, d.body, d.child_body) for d in version.documents}
    wanted = {loc: (t.strip(), b.strip(), (c or "").strip()) for loc, (t, b, c) in texts.items()}
    return docs == wanted


def publish_version(
    session: Session,
    actor: Principal,
    purpose: ConsentPurpose,
    texts: dict[str, tuple[str, str, str]],
    *,
    material: bool = True,
    old_consent: OldConsent = OldConsent.stands,
) -> ConsentVersion:
    """Publish a new version: ``texts`` is ``{locale: (title, body, child_body)}``.

    Consent on earlier versions *lapses* only for a material version whose
    publisher chose so; otherwise it stands until the family consents again.
    """
    if "ja" not in texts or not all(t[0].strip() and t[1].strip() for t in texts.values()):
        raise ConsentError(_l("A version needs a title and a text, at least in Japanese."))
    if not material:
        old_consent = OldConsent.stands
    # The purpose's lock before its latest number is read: a double-submitted form publishes once.
    once.lock(session, ConsentPurpose, purpose.id)
    lapsing = (
        list(session.scalars(consented_child_ids(purpose.code))) if old_consent == OldConsent.lapses else []
    )
    previous = current_version(session, purpose.id)
    if previous is not None and _same_texts(previous, texts):
        raise AlreadyRecorded(_l("This text is already the current version (the form may have been sent twice). "
                                 "Nothing more was published."))
    number = (previous.version + 1) if previous else 1
    version = ConsentVersion(
        purpose_id=purpose.id,
        version=number,
        material=material,
        old_consent=old_consent,
        published_at=utcnow(),
        published_by_staff_id=actor.id if actor.kind == "staff" else None,
    )
    session.add(version)
    session.flush()
    for locale, (title, body, child_body) in texts.items():
        title, body, child_body = title.strip(), body.strip(), (child_body or "").strip()
        session.add(
            ConsentDocument(
                version_id=version.id,
                locale=locale,
                title=title,
                body=body,
                child_body=child_body,
                sha256=document_hash(title, body, child_body),
            )
        )
    session.flush()
    lapsed = schedule_lapse_purges(session, purpose, lapsing, version.published_at) if lapsing else 0
    audit.record(
        session,
        actor,
        "consent.publish",
        purpose=purpose.code,
        detail={"version": number, "material": material, "old_consent": old_consent.value, "lapsed": lapsed},
    )
    return version


def schedule_lapse_purges(session: Session, purpose: ConsentPurpose, child_ids: list[int], since: datetime) -> int:
    """These children's consent lapsed at ``since``: delete their data for the purpose after the lapse window.

    Only those who are out of the gate now and have no purge pending; the
    purge is cancelled if the family consents again before it is due.
    """
    if not child_ids:
        return 0
    still_in = set(session.scalars(consented_child_ids(purpose.code, only_child_ids=child_ids)))
    pending = set(
        session.scalars(
            select(PendingPurge.child_id).where(
                PendingPurge.purpose_id == purpose.id,
                PendingPurge.status == PurgeStatus.pending,
                PendingPurge.child_id.in_(child_ids),
            )
        )
    )
    lapsed_grant = dict(
        session.execute(
            select(ConsentEvent.child_id, func.max(ConsentEvent.id))
            .where(
                ConsentEvent.purpose_id == purpose.id,
                ConsentEvent.action == Action.grant,
                ConsentEvent.child_id.in_(child_ids),
            )
            .group_by(ConsentEvent.child_id)
        ).all()
    )
    due = since + timedelta(days=lapse_window_days(purpose))
    rows = [
        PendingPurge(child_id=cid, purpose_id=purpose.id, event_id=lapsed_grant[cid], due_at=due, cause=PurgeCause.lapse)
        for cid in dict.fromkeys(child_ids)
        if cid not in still_in and cid not in pending and cid in lapsed_grant
    ]
    session.add_all(rows)
    session.flush()
    return len(rows)


def schedule_gate_exits(session: Session, now: datetime | None = None) -> int:
    """Find children who left a purpose's gate without a withdrawal and schedule their lapse purge.

    A child leaves the gate without anyone withdrawing when a material version
    lapses earlier consent (scheduled at once by :func:`publish_version`) or
    when the child reaches the grade from which the child's own consent is
    needed. Whoever has a grant newer than their last completed purge, is out
    of the gate and has no purge pending is scheduled here (set-based, per
    purpose), so no such data is held beyond the lapse window.
    """
    now = now or utcnow()
    total = 0
    for purpose in active_purposes(session):
        E, P = ConsentEvent, PendingPurge
        last_grant = (
            select(E.child_id, func.max(E.recorded_at).label("granted"))
            .where(E.purpose_id == purpose.id, E.action == Action.grant)
            .group_by(E.child_id)
            .subquery()
        )
        last_done = (
            select(P.child_id, func.max(P.done_at).label("done"))
            .where(P.purpose_id == purpose.id, P.status == PurgeStatus.done)
            .group_by(P.child_id)
            .subquery()
        )
        pending = select(P.child_id).where(P.purpose_id == purpose.id, P.status == PurgeStatus.pending)
        ids = list(
            session.scalars(
                select(last_grant.c.child_id)
                .outerjoin(last_done, last_done.c.child_id == last_grant.c.child_id)
                .where(
                    last_grant.c.child_id.not_in(consented_child_ids(purpose.code)),
                    last_grant.c.child_id.not_in(pending),
                    (last_done.c.done.is_(None)) | (last_grant.c.granted > last_done.c.done),
                )
            )
        )
        total += schedule_lapse_purges(session, purpose, ids, now)
    return total


# -- events ------------------------------------------------------------------------


def latest_event(session: Session, child_id: int, purpose_id: int, party: Party) -> ConsentEvent | None:
    return session.scalar(
        select(ConsentEvent)
        .where(
            ConsentEvent.child_id == child_id,
            ConsentEvent.purpose_id == purpose_id,
            ConsentEvent.party == party,
        )
        .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc())
        .limit(1)
    )


def is_guardian_of(session: Session, guardian_id: int, child_id: int) -> bool:
    return (
        session.scalar(
            select(GuardianChild.id).where(
                GuardianChild.guardian_id == guardian_id, GuardianChild.child_id == child_id
            )
        )
        is not None
    )


def _lock_child(session: Session, child_id: int) -> None:
    """Serialise consent changes for one child: a double-submitted form records one event.

    The child's row lock (on SQLite the database's write lock) is taken before the latest
    event is read, so the second of two submissions sees the first's event.
    """
    once.lock(session, Child, child_id)


def record_event(
    session: Session,
    actor: Principal,
    child_id: int,
    purpose: ConsentPurpose,
    party: Party,
    action: Action,
    *,
    locale: str = "ja",
    channel: Channel = Channel.online,
    at: datetime | None = None,
    form_no: str | None = None,
    signer: str | None = None,
    expected_last_event_id: int | None | bool = False,
) -> ConsentEvent:
    """Append a grant or withdrawal and make it take effect.

    ``expected_last_event_id`` is the id of the party's latest event the
    person saw on the page (``None`` when there was none); when another event
    arrived meanwhile the change is refused (:class:`ChangedMeanwhile`), or
    reported as already done when it was the same action
    (:class:`AlreadyRecorded`: a double-submitted form). ``False`` skips the check.
    """
    party, action, channel = Party(party), Action(action), Channel(channel)
    _check_actor(session, actor, child_id, purpose, party, channel)
    _lock_child(session, child_id)
    last = latest_event(session, child_id, purpose.id, party)
    version = current_version(session, purpose.id)
    if version is None:
        raise NoDocument()
    if expected_last_event_id is not False and (last.id if last else None) != expected_last_event_id:
        if last is not None and last.action == action:
            raise AlreadyRecorded()
        raise ChangedMeanwhile()
    if last is not None and last.action == action:
        if action == Action.withdraw or last.version >= version.version:
            raise AlreadyRecorded()
    if last is None and action == Action.withdraw:
        raise AlreadyRecorded(_l("There is no consent to withdraw."))
    now = utcnow()
    at = at or now
    if at > now:
        raise ConsentError(_l("A decision cannot be dated in the future."))
    if last is not None:
        day, last_day = at.astimezone(TOKYO).date(), last.at.astimezone(TOKYO).date()
        if action == Action.withdraw and last.action == Action.grant and day < last_day:
            raise WithdrawalBeforeGrant()
        if day == last_day and at <= last.at:
            # A form dated only by its day, handed in after a decision made that
            # same day, is the later decision: place it just after that one.
            at = min(now, last.at + timedelta(microseconds=1))
    doc = document_for(session, purpose, locale)
    ev = ConsentEvent(
        child_id=child_id,
        purpose_id=purpose.id,
        party=party,
        guardian_id=actor.id if actor.kind == "guardian" else None,
        action=action,
        version=version.version if action == Action.grant else (last.version if last else version.version),
        document_id=doc.id,
        locale=doc.locale,
        at=at,
        recorded_at=now,
        channel=channel,
        form_no=(form_no or None),
        signer=(signer or None),
        recorded_by_staff_id=actor.id if actor.kind == "staff" else None,
    )
    session.add(ev)
    session.flush()
    audit.record(
        session,
        actor,
        f"consent.{action.value}",
        child_id=child_id,
        purpose=purpose.code,
        detail={"event_id": ev.id, "party": party.value, "version": ev.version, "channel": channel.value},
    )
    if action == Action.withdraw and not is_consented(session, child_id, purpose.code):
        # Whether the child was in the gate a moment ago or had already left it
        # (a lapsed version, a new grade that needs the child's own consent),
        # a withdrawal removes what is held for the purpose.
        schedule_purge(session, actor, ev, purpose)
    elif action == Action.grant and is_consented(session, child_id, purpose.code):
        # Consent again within a retention or lapse window: what is held is kept.
        cancel_pending_purges(session, child_id, purpose)
    return ev


def cancel_pending_purges(session: Session, child_id: int, purpose: ConsentPurpose) -> int:
    res = session.execute(
        update(PendingPurge)
        .where(
            PendingPurge.child_id == child_id,
            PendingPurge.purpose_id == purpose.id,
            PendingPurge.status == PurgeStatus.pending,
        )
        .values(status=PurgeStatus.cancelled, done_at=utcnow())
    )
    return res.rowcount or 0


def _check_actor(session, actor, child_id, purpose, party, channel) -> None:
    if actor.kind == "guardian":
        if party != Party.guardian or channel != Channel.online or not is_guardian_of(session, actor.id, child_id):
            raise NotAllowed()
    elif actor.kind == "student":
        if party != Party.child or channel != Channel.online or actor.id != child_id:
            raise NotAllowed()
        if not child_consent_required(session, child_id, purpose):
            raise NotAllowed(_l("Your family decides this one for you."))
    elif actor.kind == "staff":
        if actor.role != Role.data_steward.value or channel == Channel.online:
            raise NotAllowed()
    elif actor.kind != "system":
        raise NotAllowed()


# -- withdrawal takes effect ---------------------------------------------------------


def schedule_purge(session: Session, actor: Principal, ev: ConsentEvent, purpose: ConsentPurpose) -> PendingPurge:
    """The child has just left the gate: delete what is held for the purpose.

    At once when the purpose keeps nothing after withdrawal (``retention_days``
    0, the default); otherwise at the end of the window, by :func:`run_due_purges`.
    """
    pending = PendingPurge(
        child_id=ev.child_id,
        purpose_id=purpose.id,
        event_id=ev.id,
        due_at=ev.recorded_at + timedelta(days=purpose.retention_days or 0),
    )
    session.add(pending)
    session.flush()
    if not purpose.retention_days:
        run_purge(session, pending, actor=actor)
    return pending


def run_purge(session: Session, pending: PendingPurge, *, actor: Principal = SYSTEM) -> dict[str, int]:
    purpose = session.get(ConsentPurpose, pending.purpose_id)
    if is_consented(session, pending.child_id, purpose.code):
        pending.status = PurgeStatus.cancelled
        pending.done_at = utcnow()
        session.flush()
        return {}
    counts: dict[str, int] = {}
    for fn in hooks.purgers_for(purpose.code):
        for key, n in (fn(session, [pending.child_id]) or {}).items():
            counts[key] = counts.get(key, 0) + int(n)
    pending.status = PurgeStatus.done
    pending.done_at = utcnow()
    pending.counts = counts
    session.flush()
    audit.record(
        session,
        actor,
        "consent.purge",
        child_id=pending.child_id,
        purpose=purpose.code,
        detail={"counts": counts, "event_id": pending.event_id, "cause": PurgeCause(pending.cause).value},
    )
    log.info("consent purge done: purpose=%s rows=%d", purpose.code, sum(counts.values()))
    return counts


def run_due_purges(session: Session, now: datetime | None = None) -> int:
    """For the scheduler: run every purge whose retention or lapse window has ended.

    First schedules the purges of children who left a gate without a
    withdrawal (:func:`schedule_gate_exits`).
    """
    now = now or utcnow()
    schedule_gate_exits(session, now)
    due = session.scalars(
        select(PendingPurge)
        .where(PendingPurge.status == PurgeStatus.pending, PendingPurge.due_at <= now)
        .order_by(PendingPurge.id)
    ).all()
    for pending in due:
        run_purge(session, pending)
    return len(due)


# -- status for the pages ------------------------------------------------------------


@dataclass
class PartyState:
    party: Party
    required: bool
    last: ConsentEvent | None
    valid: bool  # latest is a grant on a version whose consent has not lapsed
    current: bool = False  # latest is a grant on (or after) the latest material version

    @property
    def granted(self) -> bool:
        return self.last is not None and self.last.action == Action.grant

    @property
    def needs_renewal(self) -> bool:
        """A material version was published since this grant: the person is asked again."""
        return self.granted and not self.current

    @property
    def lapsed(self) -> bool:
        return self.granted and not self.valid

    def offers(self) -> list[str]:
        """The decisions the page offers: each one confirmation and one button.

        Consent on the current text: withdraw. No consent: grant. Consent on an
        earlier text after a material change: consent to the new text, or withdraw.
        """
        out = []
        if not (self.granted and self.current):
            out.append(Action.grant.value)
        if self.granted:
            out.append(Action.withdraw.value)
        return out


@dataclass
class PurposeState:
    purpose: ConsentPurpose
    guardian: PartyState
    child: PartyState
    effective: bool
    current_version: int | None


def purpose_states(session: Session, child_id: int) -> list[PurposeState]:
    """Each active purpose's state for one child, for the family and student pages."""
    return purpose_states_for(session, [child_id])[child_id]


def purpose_states_for(session: Session, child_ids: list[int]) -> dict[int, list[PurposeState]]:
    """Each active purpose's state for several children, in five queries whatever their number."""
    from portal.auth.access import current_year_id_subquery
    from portal.people.models import Enrolment, SchoolClass

    child_ids = list(dict.fromkeys(child_ids))
    out: dict[int, list[PurposeState]] = {cid: [] for cid in child_ids}
    purposes = active_purposes(session)
    if not purposes or not child_ids:
        return out
    pids = [p.id for p in purposes]
    V = ConsentVersion
    versions = {
        pid: (latest or 0, material or 1, lapses or 1)
        for pid, latest, material, lapses in session.execute(
            select(
                V.purpose_id,
                func.max(V.version),
                func.max(case((V.material.is_(True), V.version))),
                func.max(case((V.old_consent == OldConsent.lapses, V.version))),
            )
            .where(V.purpose_id.in_(pids))
            .group_by(V.purpose_id)
        ).all()
    }
    E = ConsentEvent
    ranked = (
        select(
            E.id,
            func.row_number()
            .over(partition_by=(E.child_id, E.purpose_id, E.party), order_by=(E.at.desc(), E.id.desc()))
            .label("rn"),
        )
        .where(E.child_id.in_(child_ids), E.purpose_id.in_(pids))
        .subquery()
    )
    latest = {
        (ev.child_id, ev.purpose_id, ev.party): ev
        for ev in session.scalars(select(E).join(ranked, ranked.c.id == E.id).where(ranked.c.rn == 1))
    }
    grades = dict(
        session.execute(
            select(Enrolment.child_id, SchoolClass.grade)
            .join(SchoolClass, SchoolClass.id == Enrolment.class_id)
            .where(Enrolment.child_id.in_(child_ids), Enrolment.school_year_id == current_year_id_subquery())
        ).all()
    )
    effective = set(
        session.execute(
            union_all(
                *(
                    select(literal(p.id).label("pid"), g.c.child_id)
                    for p in purposes
                    for g in [consented_child_ids(p.code, only_child_ids=child_ids).subquery()]
                )
            )
        ).all()
    )
    for cid in child_ids:
        grade = grades.get(cid)
        for p in purposes:
            latest_v, material_v, valid_from = versions.get(p.id, (0, 1, 1))
            parts = {}
            for party in (Party.guardian, Party.child):
                last = latest.get((cid, p.id, party))
                granted = last is not None and last.action == Action.grant
                required = party == Party.guardian or (grade is not None and grade >= p.child_from_grade)
                parts[party] = PartyState(
                    party,
                    required,
                    last,
                    valid=granted and last.version >= valid_from,
                    current=granted and last.version >= material_v,
                )
            out[cid].append(
                PurposeState(
                    p, parts[Party.guardian], parts[Party.child], (p.id, cid) in effective, latest_v or None
                )
            )
    return out


def history(session: Session, child_id: int, *, party: Party | None = None) -> list[ConsentEvent]:
    q = (
        select(ConsentEvent)
        .where(ConsentEvent.child_id == child_id)
        .options(selectinload(ConsentEvent.purpose), selectinload(ConsentEvent.document))
        .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc())
    )
    if party is not None:
        q = q.where(ConsentEvent.party == party)
    return list(session.scalars(q))


def paper_date(d: date) -> datetime:
    """A date written on a paper form, as the start of that day in Tokyo."""
    return datetime.combine(d, time(0, 0), tzinfo=TOKYO).astimezone(UTC)


# -- defining purposes -------------------------------------------------------------------

PURPOSE_CODE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")
LIST_FIELDS = ("data_items", "sources", "users")
TEXT_FIELDS = ("title", "summary", "child_summary", "retention")


def save_purpose(
    session: Session,
    actor: Principal,
    purpose: ConsentPurpose | None,
    *,
    code: str,
    texts: dict[str, dict[str, str]],
    retention_days: int,
    child_from_grade: int,
) -> ConsentPurpose:
    """Create or update a purpose's description. ``texts`` is ``{field: {locale: text}}``;
    list fields (data items, sources, users) are given one item per line."""
    code = (code or "").strip()
    if purpose is None:
        if not (3 <= len(code) <= 60 and code[0].isalpha() and set(code) <= PURPOSE_CODE_CHARS):
            raise ConsentError(_l("A code is 3 to 60 lower-case letters, digits or underscores, starting with a letter."))
        if purpose_by_code(session, code) is not None:
            raise ConsentError(_l("A purpose with this code already exists."))
        purpose = ConsentPurpose(code=code)
        session.add(purpose)
    for name in TEXT_FIELDS:
        setattr(purpose, name, {loc: v.strip() for loc, v in texts.get(name, {}).items() if v and v.strip()})
    for name in LIST_FIELDS:
        setattr(
            purpose,
            name,
            {loc: [line.strip() for line in v.splitlines() if line.strip()] for loc, v in texts.get(name, {}).items() if v and v.strip()},
        )
    if not purpose.title.get("ja"):
        raise ConsentError(_l("Enter a title in Japanese."))
    purpose.retention_days = int(retention_days)
    purpose.child_from_grade = int(child_from_grade)
    if not once.flush_unique(session):  # the same new purpose sent twice at once
        raise ConsentError(_l("A purpose with this code already exists."))
    audit.record(session, actor, "consent.purpose_saved", purpose=purpose.code,
                 detail={"retention_days": purpose.retention_days, "child_from_grade": purpose.child_from_grade})
    return purpose
