"""Demo screening: an approved rule set, linked records where linkage left none,
past teacher decisions (so the evaluation page has numbers), a model, and a run."""

from __future__ import annotations

import random
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.auth.principal import SYSTEM
from portal.auth.service import principal_for
from portal.orm import utcnow


def _records(session: Session, rng: random.Random, child_ids: list[int], today: date) -> None:
    """Synthetic attendance, allowances and fees for consented children (only if linkage made none)."""
    from backoffice.linkage.models import ImportBatch, LinkedRecord

    if session.scalar(select(func.count(LinkedRecord.id)).where(LinkedRecord.source == "attendance")):
        return
    batch = ImportBatch(source="attendance", filename="demo", file_sha256="d" * 64, actor_kind="system", counts={})
    session.add(batch)
    session.flush()
    rows = []
    n = 0

    def add(cid, source, day, **data):
        nonlocal n
        n += 1
        rows.append(LinkedRecord(batch_id=batch.id, source=source, source_row=n, row_key=f"screening-demo-{n}",
                                 child_id=cid, method="student_no", status="linked", record_date=day,
                                 expires_on=day + timedelta(days=395), data=data))

    for cid in child_ids:
        risk = rng.random()
        for back in range(6):
            y, m = today.year, today.month - back
            while m <= 0:
                m += 12
                y -= 1
            base = 0.02 if risk < 0.85 else 0.12 + 0.1 * (back < 3)
            absent = sum(rng.random() < base for _ in range(20))
            add(cid, "attendance", date(y, m, 1), month=f"{y}-{m:02d}", school_days=20, days_absent=absent,
                days_late=sum(rng.random() < 0.03 for _ in range(20)), nurse_visits=rng.randrange(0, 3 if risk < 0.9 else 6))
        if rng.random() < 0.12:
            add(cid, "jidou_fuyou", today - timedelta(days=200), payment_class=rng.choice(["全部支給", "一部支給"]))
        if rng.random() < 0.1:
            add(cid, "shugaku_enjo", today - timedelta(days=150), assistance_class="準要保護")
        if rng.random() < 0.06:
            add(cid, "kyushoku", today - timedelta(days=20), months_in_arrears=rng.randrange(1, 5))
    session.add_all(rows)
    session.flush()


MANUAL_REASONS = [
    "朝食をとらずに登校する日が続いている（デモ）",
    "友人関係のトラブルを本人から聞いた（デモ）",
    "保護者と連絡がとりにくくなっている（デモ）",
    "服装や持ち物の様子が気になる（デモ）",
]


def _one_row(features: dict):
    """A one-child indicator table from a decision's features (the rules are evaluated on it)."""
    import numpy as np

    from backoffice.screening.indicators import CODES, INDICATORS, LINKAGE, SURVEYS, IndicatorTable

    t = IndicatorTable(child_ids=np.array([0], dtype=np.int64))
    for c in CODES:
        kind = INDICATORS[c].type
        t.columns[c] = np.array([features.get(c) or 0], dtype=bool if kind == "bool" else float)
    t.covered = {LINKAGE: np.ones(1, dtype=bool), SURVEYS: np.ones(1, dtype=bool)}
    return t


def _past_decisions(session: Session, rng: random.Random, rs, child_ids: list[int], deciders: dict[int, int]) -> None:
    """Resolved flags with outcomes: the history the evaluation and the model learn from.

    Each synthetic decision becomes the flag the active rules would have raised
    on its indicator values, with the facts that fired it; a decision no rule
    explains becomes a flag a teacher raised by hand.
    """
    from backoffice.screening import model as ml
    from backoffice.screening import rules as rl
    from backoffice.screening.indicators import LINKAGE, SURVEYS
    from backoffice.screening.models import Flag, FlagSource, FlagStatus, Outcome, Resolution

    table = ml.synthetic_decisions(min(480, 2 * len(child_ids)), seed=7)
    now = utcnow()
    for d in table:
        cid = rng.choice(child_ids)
        raised = now - timedelta(days=rng.randrange(30, 300))
        one = _one_row(d.features)
        fired = [r for r in rs.rules if bool(rl.rule_mask(r, one)[0])]
        common = dict(
            child_id=cid, features=one.row(0), status=FlagStatus.resolved, created_at=raised, last_seen_at=raised,
            facts_cleared_at=raised + timedelta(days=60), resolved_at=raised + timedelta(days=rng.randrange(1, 21)),
            resolution=Resolution.school_decided, outcome=Outcome.confirmed if d.confirmed else Outcome.not_needed,
            resolved_by_staff_id=deciders.get(cid),
        )
        if fired:
            rule = max(fired, key=lambda r: (r["urgency"], rng.random()))
            purposes = rl.purposes_of(rule)
            session.add(Flag(
                source=FlagSource.rule, rule_set_version_id=rs.id, rule_code=rule["code"],
                reason_key=f"rule:{rule['code']}", reasons=rl.facts_for(rule, one, 0), urgency=rule["urgency"],
                needs_linkage=LINKAGE in purposes, needs_survey=SURVEYS in purposes, **common,
            ))
        else:
            session.add(Flag(
                source=FlagSource.manual, reason_key=f"manual:demo-{rng.getrandbits(64):016x}",
                reasons=[{"indicator": "manual", "fact": True, "params": {}}], manual_text=rng.choice(MANUAL_REASONS),
                urgency=rng.choice([1, 2, 2, 3]), raised_by_staff_id=deciders.get(cid), **common,
            ))
    session.flush()


def load(session: Session, ctx) -> None:
    from backoffice.screening import model as ml
    from backoffice.screening import service
    from backoffice.screening.rules import DEMO_RULES
    from consent.gate import consented_child_ids
    from portal.people.models import Enrolment, SchoolClass

    rng = random.Random(6)
    steward, approver = principal_for(ctx.staff["steward"]), principal_for(ctx.staff["steward2"])
    rs = service.draft_rule_set(session, steward, "見守りの判定ルール（デモ）", DEMO_RULES)
    service.submit_rule_set(session, steward, rs.id)
    service.approve_rule_set(session, approver, rs.id, "Demo")

    consented = sorted(session.scalars(consented_child_ids("data_linkage")).all())
    if not consented:
        return
    today = date.today()
    _records(session, rng, consented, today)
    deciders = dict(
        session.execute(
            select(Enrolment.child_id, SchoolClass.homeroom_teacher_id).join(SchoolClass, SchoolClass.id == Enrolment.class_id)
        ).all()
    )
    _past_decisions(session, rng, rs, consented, deciders)
    try:
        m = ml.train(session, SYSTEM)
    except service.ScreeningError:
        m = None
    if m is not None and m.beats_baselines:
        ml.switch(session, SYSTEM, m.id, True)
    service.run_screening(session, SYSTEM, trigger="demo", as_of=today)
    # and one flag the demo teacher raised by hand, so the queue shows both kinds
    teacher = ctx.staff.get("teacher")
    mine = [cid for cid, tid in deciders.items() if teacher is not None and tid == teacher.id and cid in set(consented)]
    if mine:
        service.raise_manual_flag(session, principal_for(teacher), mine[0], MANUAL_REASONS[0], urgency=2)
