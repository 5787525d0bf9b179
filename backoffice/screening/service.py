"""Screening operations: flags (the casework contract), rule sets, runs.

Contract for casework (stable):

* :func:`open_flags_query` ``(principal) -> Select[Flag]``: the open flags this
  principal may see (narrowed by ``visible_child_ids`` and the consent gate),
  most urgent first.
* :func:`raise_manual_flag` ``(session, actor, child_id, reason_text, *, urgency=2) -> Flag``
* :func:`resolve_flag` ``(session, actor, flag_id, reason, *, outcome=None) -> Flag``:
  the school decided. ``reason`` is the decision in words (encrypted at rest),
  ``outcome`` ``"confirmed"`` (support needed) or ``"not_needed"`` (flag
  overridden); the outcome is what the evaluation and the model learn from.
* :func:`describe_reasons` ``(flag, locale) -> list[str]``: the reasons in plain words.
* :func:`flags_for_child` ``(session, principal, child_id) -> list[Flag]`` (audited read).

All functions flush, never commit. Errors are :class:`ScreeningError` with a
message in the user's language (``str(err)``).
"""

from __future__ import annotations

import uuid

import numpy as np
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from backoffice.screening import reads
from backoffice.screening.indicators import INDICATORS, LINKAGE, SURVEYS, format_value
from backoffice.screening.models import Flag, FlagSource, FlagStatus, Outcome, Resolution
from portal import once
from portal.audit import service as audit
from portal.auth.access import can_see_child, visible_child_ids
from portal.auth.principal import Principal
from portal.orm import utcnow

MAX_REASON_CHARS = 2000


class ScreeningError(ValueError):
    """A refusal with a message for the user (lazy, so it follows the locale)."""

    def __init__(self, message, **params):
        self.message = message
        self.params = params
        super().__init__(str(message) % params)

    def __str__(self) -> str:
        return str(self.message) % self.params


class FlagNotFound(ScreeningError):
    """The flag does not exist or is outside the principal's scope (a page answers 404)."""


def open_flags_query(principal: Principal) -> Select:
    """A SELECT of the open :class:`Flag` rows this principal may see, most urgent first."""
    if principal.role in ("system",):
        visible = Flag.child_id.is_not(None)
    else:
        visible = Flag.child_id.in_(visible_child_ids(principal))
    return (
        reads.open_shown_flags(visible)
        .order_by(Flag.urgency.desc(), Flag.model_score.desc().nulls_last(), Flag.created_at, Flag.id)
    )


def _flag_for(session: Session, actor: Principal, flag_id: int) -> Flag:
    flag = session.get(Flag, flag_id)
    if flag is None or (actor.role != "system" and not can_see_child(session, actor, flag.child_id)):
        raise FlagNotFound(_l("This flag does not exist or is not yours to see."))
    return flag


def flags_for_child(session: Session, principal: Principal, child_id: int, *, include_resolved: bool = True) -> list[Flag]:
    """A child's flags (open first), if the principal may see the child; audited."""
    if not can_see_child(session, principal, child_id):
        raise ScreeningError(_l("This child does not exist or is not yours to see."))
    q = reads.flags(Flag.child_id == child_id)
    if not include_resolved:
        q = q.where(Flag.status == FlagStatus.open)
    rows = reads.load(
        session, q.options(selectinload(Flag.rule_set)).order_by(Flag.status, Flag.urgency.desc(), Flag.created_at.desc())
    )
    audit.record_child_read(session, principal, child_id, "screening.flags", purpose="screening")
    return rows


def raise_manual_flag(session: Session, actor: Principal, child_id: int, reason_text: str, *, urgency: int = 2) -> Flag:
    """A teacher (or school staff) flags a child by hand, with a reason in words."""
    text = (reason_text or "").strip()
    if not text:
        raise ScreeningError(_l("Write why you are flagging this child."))
    if len(text) > MAX_REASON_CHARS:
        raise ScreeningError(_l("The reason is too long (at most %(n)s characters)."), n=MAX_REASON_CHARS)
    if urgency not in (1, 2, 3):
        raise ScreeningError(_l("Choose an urgency: low, medium or high."))
    if actor.role != "system" and not can_see_child(session, actor, child_id):
        raise ScreeningError(_l("This child does not exist or is not yours to see."))
    # A teacher's own concern rests on the school's duty of care, not on consent:
    # it is kept whatever the family decided; only the consent-based evidence
    # stored beside it (indicator values, read through the gate) depends on consent.
    from backoffice.screening import indicators

    # the indicator values as they stand (through the gate): the decision table the model learns from
    table = indicators.compute(session, child_ids=[child_id])
    features = table.row(0) if len(table) else {}
    now = utcnow()
    flag = Flag(
        child_id=child_id,
        source=FlagSource.manual,
        features=features,
        reason_key=f"manual:{uuid.uuid4().hex}",
        reasons=[{"indicator": "manual", "fact": True, "params": {}}],
        manual_text=text,
        urgency=urgency,
        raised_by_staff_id=actor.id if actor.is_staff else None,
        created_at=now,
        last_seen_at=now,
    )
    session.add(flag)
    session.flush()
    audit.record(session, actor, "screening.flag_raised", child_id=child_id, detail={"flag": flag.id, "urgency": urgency})
    return flag


def resolve_flag(session: Session, actor: Principal, flag_id: int, reason: str, *, outcome: str | None = None) -> Flag:
    """The school decided on a flag; the flag closes with the decision and its outcome."""
    flag = _flag_for(session, actor, flag_id)
    if flag.status != FlagStatus.open:
        raise ScreeningError(_l("This flag is already resolved."))
    text = (reason or "").strip()
    if len(text) > MAX_REASON_CHARS:
        raise ScreeningError(_l("The reason is too long (at most %(n)s characters)."), n=MAX_REASON_CHARS)
    if outcome is not None:
        try:
            outcome = Outcome(outcome)
        except ValueError:
            raise ScreeningError(_l("Unknown decision.")) from None
    # One decision: the update matches only a flag still open (of two people at once, one wins).
    if not once.claim(session, Flag, flag.id, Flag.status == FlagStatus.open,
                      status=FlagStatus.resolved, resolution=Resolution.school_decided,
                      resolution_reason=text or None, outcome=outcome, resolved_at=utcnow(),
                      resolved_by_staff_id=actor.id if actor.is_staff else None):
        raise ScreeningError(_l("This flag is already resolved."))
    audit.record(
        session, actor, "screening.flag_resolved", child_id=flag.child_id,
        detail={"flag": flag.id, "outcome": outcome.value if outcome else None},
    )
    return flag


# -- reasons in plain words ----------------------------------------------------

_OPS = {">=": "≥", ">": ">", "<=": "≤", "<": "<", "==": "=", "is": ""}


def _describe_one(reason: dict, flag: Flag | None) -> str:
    code = reason.get("indicator")
    if code == "manual":
        text = (flag.manual_text if flag is not None else None) or ""
        return _("Raised by a staff member: %(text)s", text=text)
    ind = INDICATORS.get(code)
    if ind is None:
        return _("An indicator that no longer exists (%(code)s)", code=code)
    value = reason.get("fact")
    sentence = str(ind.fact).format(value=format_value(ind, value) if value is not None else "")
    params = reason.get("params") or {}
    op = params.get("op")
    if op and op != "is" and params.get("value") is not None:
        sentence += " " + _("(threshold %(op)s %(value)s)", op=_OPS.get(op, op), value=format_value(ind, params["value"]))
    return sentence


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def describe_reasons(flag: Flag, locale: str = "ja") -> list[str]:
    """The flag's reasons as sentences in ``locale`` ("ja" or "en")."""
    with force_locale(locale):
        return [_cap(_describe_one(r, flag)) for r in (flag.reasons or [])]


def describe_factors(flag: Flag, locale: str = "ja") -> list[str]:
    """The model's main contributing factors for this child, in words (may be empty)."""
    with force_locale(locale):
        out = []
        for f in flag.model_factors or []:
            ind = INDICATORS.get(f.get("indicator"))
            if ind is not None:
                out.append(str(ind.label))
        return out


# -- consent withdrawal ------------------------------------------------------


def _purge(session: Session, purpose: str, child_ids: list[int]) -> dict[str, int]:
    """Consent for ``purpose`` ended: delete the flags that rest on it (set-based).

    A teacher's own concern (a manual flag) is not consent-based and stays;
    only the consent-based evidence kept with it goes: the indicator values
    of ``purpose`` in its ``features`` (the decision table the model learns
    from) and the model's score and factors, computed from consented data.
    The same evidence is stripped from the child's other remaining flags
    (a linkage-rule flag keeps the survey values of the day it was raised).
    """
    from sqlalchemy import delete, update

    if not child_ids:
        return {"screening_flags": 0, "screening_evidence": 0}
    needs = Flag.needs_linkage if purpose == LINKAGE else Flag.needs_survey
    n = session.execute(
        delete(Flag)
        .where(Flag.child_id.in_(child_ids), needs.is_(True), Flag.source != FlagSource.manual)
        .execution_options(synchronize_session=False)
    ).rowcount or 0
    codes = {code for code, ind in INDICATORS.items() if ind.purpose == purpose}
    updates = []
    for fid, features, score, factors in session.execute(
        select(Flag.id, Flag.features, Flag.model_score, Flag.model_factors).where(Flag.child_id.in_(child_ids))
    ):
        kept = {k: v for k, v in (features or {}).items() if k not in codes}
        if kept != (features or {}) or score is not None or factors:
            updates.append({"id": fid, "features": kept, "model_score": None, "model_factors": None})
    if updates:
        session.execute(update(Flag), updates)
    session.expire_all()
    session.flush()
    return {"screening_flags": n, "screening_evidence": len(updates)}


def purge_linkage(session: Session, child_ids: list[int]) -> dict[str, int]:
    return _purge(session, LINKAGE, child_ids)


def purge_survey(session: Session, child_ids: list[int]) -> dict[str, int]:
    return _purge(session, SURVEYS, child_ids)


# Indicators that exist only because a child asked for help: withheld from the family's disclosure.
HELP_INDICATORS = frozenset({"help_request"})


def disclosure_rows(session: Session, child_id: int) -> list[dict]:
    """The child's flags for the disclosure download (開示): no staff names, no free text of others.

    A reason that is a child's request for help is withheld from the family
    (APPI art. 78(1)(i)) unless the data steward releases it: the flag shows
    its other reasons, and a flag with no other reason is withheld whole.
    """
    from consent.hooks import RELEASED_VALUES, WITHHELD

    out = []
    for f in session.scalars(select(Flag).where(Flag.child_id == child_id).order_by(Flag.created_at)).all():
        help_reason = [r.get("indicator") in HELP_INDICATORS for r in (f.reasons or [])]
        with force_locale("ja"):
            sentences = [_cap(_describe_one(r, f)) for r in (f.reasons or [])]
        shown = [t for t, is_help in zip(sentences, help_reason, strict=True) if not is_help]
        row = {
            "raised_on": f.created_at.date().isoformat(),
            "source": f.source.value,
            "reasons": shown,
            "status": f.status.value,
            "resolved_on": f.resolved_at.date().isoformat() if f.resolved_at else None,
            "outcome": f.outcome.value if f.outcome else None,
        }
        if any(help_reason):
            row[RELEASED_VALUES] = {"reasons": sentences}
            if not shown:
                row[WITHHELD] = True
        out.append(row)
    return out


# -- rule sets: drafted by the data steward, approved by a second person ----------

EDITOR_ROLES = ("data_steward",)
APPROVER_ROLES = ("data_steward", "school_lead", "coordinator")


def _require(actor: Principal, roles) -> None:
    if actor.role not in roles:
        raise ScreeningError(_l("Your role may not do this."))


def active_rule_set(session: Session):
    from backoffice.screening.models import RuleSet, RuleSetStatus

    return session.scalar(select(RuleSet).where(RuleSet.status == RuleSetStatus.active).limit(1))


def _validated(source: str) -> list[dict]:
    from backoffice.screening.rules import RuleError, parse

    try:
        return parse(source)
    except RuleError as err:
        raise ScreeningError("%(error)s", error=str(err)) from None


def _rule_set(session: Session, rule_set_id: int):
    from backoffice.screening.models import RuleSet

    rs = session.get(RuleSet, rule_set_id)
    if rs is None:
        raise ScreeningError(_l("This rule set does not exist."))
    return rs


def draft_rule_set(session: Session, actor: Principal, title: str, source: str):
    """A new draft version (validated); the author is the actor."""
    from sqlalchemy import func

    from backoffice.screening.models import RuleSet, RuleSetStatus

    _require(actor, EDITOR_ROLES)
    rules = _validated(source)
    version = (session.scalar(select(func.max(RuleSet.version))) or 0) + 1
    rs = RuleSet(
        version=version,
        title=(title or "").strip()[:200],
        source=source.strip() + "\n",
        rules=rules,
        status=RuleSetStatus.draft,
        author_staff_id=actor.id,
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(rs)
    session.flush()
    audit.record(session, actor, "screening.rules_drafted", detail={"rule_set": rs.id, "version": version, "rules": len(rules)})
    return rs


def update_rule_set(session: Session, actor: Principal, rule_set_id: int, title: str, source: str):
    """Edit a draft (or a rejected version, which becomes a draft again); only its author."""
    from backoffice.screening.models import RuleSetStatus

    _require(actor, EDITOR_ROLES)
    rs = _rule_set(session, rule_set_id)
    if rs.status not in (RuleSetStatus.draft, RuleSetStatus.rejected):
        raise ScreeningError(_l("Only a draft can be edited: start a new version instead."))
    if rs.author_staff_id != actor.id:
        raise ScreeningError(_l("Only the author of a draft can edit it."))
    rs.rules = _validated(source)
    rs.source = source.strip() + "\n"
    rs.title = (title or "").strip()[:200]
    rs.status = RuleSetStatus.draft
    rs.updated_at = utcnow()
    session.flush()
    audit.record(session, actor, "screening.rules_edited", detail={"rule_set": rs.id, "version": rs.version})
    return rs


def submit_rule_set(session: Session, actor: Principal, rule_set_id: int):
    from backoffice.screening.models import RuleSet, RuleSetStatus

    _require(actor, EDITOR_ROLES)
    rs = _rule_set(session, rule_set_id)
    if rs.author_staff_id != actor.id:
        raise ScreeningError(_l("Only the author of a draft can send it for approval."))
    if rs.status != RuleSetStatus.draft or not once.claim(
            session, RuleSet, rs.id, RuleSet.status == RuleSetStatus.draft,
            status=RuleSetStatus.submitted, submitted_at=utcnow()):
        raise ScreeningError(_l("Only a draft can be sent for approval."))
    audit.record(session, actor, "screening.rules_submitted", detail={"rule_set": rs.id, "version": rs.version})
    return rs


def approve_rule_set(session: Session, actor: Principal, rule_set_id: int, note: str = ""):
    """A second person approves: the version becomes the active one (four eyes)."""
    from backoffice.screening.models import RuleSet, RuleSetStatus

    _require(actor, APPROVER_ROLES)
    rs = _rule_set(session, rule_set_id)
    if rs.status != RuleSetStatus.submitted:
        raise ScreeningError(_l("Only a rule set sent for approval can be approved."))
    if rs.author_staff_id == actor.id:
        raise ScreeningError(
            _l("You wrote this rule set, so you cannot approve it: a second person must approve it (four eyes).")
        )
    rules = _validated(rs.source)  # indicators may have changed since it was written
    now = utcnow()
    # Retire the active version, then claim this one (still submitted, not by its author): of two
    # approvals at once, of this version or of two versions, one wins; a unique index on the
    # active status keeps a second active version out whatever the timing.
    # (On the unique index's refusal the transaction is spoiled: the caller rolls back, as on any refusal.)
    try:
        session.execute(
            update(RuleSet).where(RuleSet.status == RuleSetStatus.active, RuleSet.id != rs.id)
            .values(status=RuleSetStatus.retired, retired_at=now).execution_options(synchronize_session=False)
        )
        won = once.claim(session, RuleSet, rs.id, RuleSet.status == RuleSetStatus.submitted,
                         RuleSet.author_staff_id != actor.id,
                         status=RuleSetStatus.active, rules=rules, approved_by_staff_id=actor.id,
                         approved_at=now, review_note=(note or "").strip()[:500])
    except IntegrityError:
        won = False
    if not won:
        raise ScreeningError(_l("This rule set was approved, sent back or replaced by someone else a moment ago. "
                                "Nothing was changed: reload the page to see where it stands."))
    session.expire_all()  # the retired versions, as they are now
    audit.record(session, actor, "screening.rules_approved", detail={"rule_set": rs.id, "version": rs.version})
    return rs


def reject_rule_set(session: Session, actor: Principal, rule_set_id: int, note: str):
    from backoffice.screening.models import RuleSet, RuleSetStatus

    _require(actor, APPROVER_ROLES)
    rs = _rule_set(session, rule_set_id)
    if rs.status != RuleSetStatus.submitted:
        raise ScreeningError(_l("Only a rule set sent for approval can be sent back."))
    if rs.author_staff_id == actor.id:
        raise ScreeningError(_l("You wrote this rule set: a second person must review it."))
    if not (note or "").strip():
        raise ScreeningError(_l("Say why you are sending the rule set back."))
    if not once.claim(session, RuleSet, rs.id, RuleSet.status == RuleSetStatus.submitted,
                      status=RuleSetStatus.rejected, review_note=note.strip()[:500]):
        raise ScreeningError(_l("This rule set was approved, sent back or replaced by someone else a moment ago. "
                                "Nothing was changed: reload the page to see where it stands."))
    audit.record(session, actor, "screening.rules_rejected", detail={"rule_set": rs.id, "version": rs.version})
    return rs


# -- runs ------------------------------------------------------------------------------


def run_screening(
    session: Session,
    actor: Principal,
    *,
    trigger: str = "page",
    as_of=None,
    now=None,
    table=None,
):
    """Run the active rules over every consented child; open, refresh and clear flags.

    Set-based throughout: the indicators are a handful of grouped queries,
    the rules are evaluated on arrays, new flags are one bulk INSERT and
    changed ones one bulk UPDATE. Returns the :class:`ScreeningRun`.
    """
    from datetime import date

    from sqlalchemy import insert, update

    from backoffice.screening import indicators
    from backoffice.screening import rules as rl
    from backoffice.screening.models import ScreeningRun

    now = now or utcnow()
    as_of = as_of or date.today()
    rs = active_rule_set(session)
    if rs is None:
        raise ScreeningError(_l("There is no active rule set: a rule set must be approved before screening can run."))
    run = ScreeningRun(
        rule_set_version_id=rs.id,
        trigger=trigger,
        actor_kind=actor.kind,
        actor_id=actor.id if actor.is_staff else None,
        started_at=now,
    )
    session.add(run)
    session.flush()
    if table is None:
        table = indicators.compute(session, as_of)
    ids = table.child_ids

    # the current episodes of rule reasons (open, or decided while the facts still hold)
    episodes: dict[tuple[int, str], tuple[int, FlagStatus]] = {
        (cid, key): (fid, st)
        for fid, cid, key, st in session.execute(
            select(Flag.id, Flag.child_id, Flag.reason_key, Flag.status).where(
                Flag.source == FlagSource.rule, Flag.facts_cleared_at.is_(None)
            )
        )
    }
    fired_keys: set[tuple[int, str]] = set()
    new_rows: list[dict] = []
    refresh: list[dict] = []
    model_scores = _model_scores(session, table)
    for rule in rs.rules:
        key = f"rule:{rule['code']}"
        purposes = rl.purposes_of(rule)
        hits = np.flatnonzero(rl.rule_mask(rule, table))
        for i in hits:
            cid = int(ids[i])
            fired_keys.add((cid, key))
            facts = rl.facts_for(rule, table, i)
            ep = episodes.get((cid, key))
            score, factors = model_scores.get(cid, (None, None))
            if ep is None:
                new_rows.append(
                    {
                        "child_id": cid,
                        "source": FlagSource.rule,
                        "rule_set_version_id": rs.id,
                        "rule_code": rule["code"],
                        "reason_key": key,
                        "reasons": facts,
                        "features": table.row(i),
                        "needs_linkage": indicators.LINKAGE in purposes,
                        "needs_survey": indicators.SURVEYS in purposes,
                        "status": FlagStatus.open,
                        "urgency": rule["urgency"],
                        "created_at": now,
                        "last_seen_at": now,
                        "run_id": run.id,
                        "model_score": score,
                        "model_factors": factors,
                    }
                )
            elif ep[1] == FlagStatus.open:
                refresh.append(
                    {
                        "id": ep[0],
                        "reasons": facts,
                        "rule_set_version_id": rs.id,
                        "urgency": rule["urgency"],
                        "last_seen_at": now,
                        "needs_linkage": indicators.LINKAGE in purposes,
                        "needs_survey": indicators.SURVEYS in purposes,
                        "model_score": score,
                        "model_factors": factors,
                    }
                )
    cleared_open = [fid for (ck, (fid, st)) in episodes.items() if ck not in fired_keys and st == FlagStatus.open]
    cleared_decided = [fid for (ck, (fid, st)) in episodes.items() if ck not in fired_keys and st != FlagStatus.open]
    if new_rows:
        session.execute(insert(Flag), new_rows)
    if refresh:
        session.execute(update(Flag), refresh)
    for chunk in _chunks(cleared_open):
        session.execute(
            update(Flag)
            .where(Flag.id.in_(chunk))
            .values(
                status=FlagStatus.resolved, resolution=Resolution.facts_cleared, resolved_at=now, facts_cleared_at=now
            )
            .execution_options(synchronize_session=False)
        )
    for chunk in _chunks(cleared_decided):
        session.execute(
            update(Flag).where(Flag.id.in_(chunk)).values(facts_cleared_at=now).execution_options(synchronize_session=False)
        )
    if model_scores:
        _score_manual_flags(session, model_scores)
    run.finished_at = utcnow()
    run.counts = {
        "children": int(len(ids)),
        "rules": len(rs.rules),
        "new_flags": len(new_rows),
        "still_open": len(refresh),
        "cleared": len(cleared_open),
        "model": bool(model_scores),
    }
    session.flush()
    session.expire_all()
    audit.record(session, actor, "screening.run", detail={"run": run.id, "version": rs.version, **run.counts})
    return run


def _chunks(ids: list[int], n: int = 1000):
    for k in range(0, len(ids), n):
        yield ids[k : k + n]


def _model_scores(session: Session, table) -> dict[int, tuple[float, list]]:
    """child id -> (calibrated probability, main factors) from the enabled model, or {}."""
    from backoffice.screening import model as ml

    current = ml.enabled_model(session)
    if current is None or len(table) == 0:
        return {}
    probs, factors = ml.score_table(current.params, table)
    return {int(c): (float(p), f) for c, p, f in zip(table.child_ids, probs, factors, strict=True)}


def _score_manual_flags(session: Session, scores: dict) -> None:
    from sqlalchemy import update

    rows = [
        {"id": fid, "model_score": scores[cid][0], "model_factors": scores[cid][1]}
        for fid, cid in session.execute(
            select(Flag.id, Flag.child_id).where(Flag.status == FlagStatus.open, Flag.source == FlagSource.manual)
        )
        if cid in scores
    ]
    if rows:
        session.execute(update(Flag), rows)


def queue(session: Session, principal: Principal, limit: int = 300) -> list[dict]:
    """The principal's queue: one entry per child with open flags, most urgent first (audited reads)."""
    from portal.auth.access import current_year_id_subquery
    from portal.people.models import Child, Enrolment, SchoolClass

    flags = reads.load(session, open_flags_query(principal).limit(limit))
    if not flags:
        return []
    ids = list(dict.fromkeys(f.child_id for f in flags))
    info = {
        cid: (child, klass)
        for cid, child, klass in session.execute(
            select(Child.id, Child, SchoolClass)
            .select_from(Child)
            .outerjoin(Enrolment, (Enrolment.child_id == Child.id) & (Enrolment.school_year_id == current_year_id_subquery()))
            .outerjoin(SchoolClass, SchoolClass.id == Enrolment.class_id)
            .where(Child.id.in_(ids))
        )
    }
    by_child: dict[int, dict] = {}
    for f in flags:
        entry = by_child.setdefault(
            f.child_id,
            {"child": info[f.child_id][0], "klass": info[f.child_id][1], "flags": [], "urgency": 0, "score": None},
        )
        entry["flags"].append(f)
        entry["urgency"] = max(entry["urgency"], f.urgency)
        if f.model_score is not None:
            entry["score"] = max(entry["score"] or 0.0, f.model_score)
    audit.record_child_reads(session, principal, list(by_child), "screening.queue", purpose="screening")
    return sorted(by_child.values(), key=lambda e: (-e["urgency"], -(e["score"] or 0), e["flags"][0].created_at))
