"""Screening benchmark: 20,000 synthetic children end to end (indicators, rules, model, flags).

    .venv/bin/python bench/screening.py [--children 20000]

Builds a throwaway SQLite database (or DATABASE_URL's PostgreSQL) with the
children, their consent to data_linkage and wellbeing_survey, six months of
attendance, allowances, lunch fees, health checks and check-in signals; then
trains the model on a synthetic decision table, switches it on, and times
one screening run (indicators in SQL, the rule set on arrays, the model
scoring every child, one bulk insert of flags) plus a second run (the
nightly case: refresh, nothing new). The bar: the first run under 30 s of
wall-clock time (``run_cpu_s`` is the CPU this process spent, SQLite included:
the figure to compare when the machine is busy). The last line is key=value pairs.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._scratch import scratch_app, scratch_environment  # noqa: E402

AS_OF = date(2026, 7, 15)


def build(n: int, seed: int) -> None:
    from sqlalchemy import insert, select

    from backoffice.linkage.models import ImportBatch, LinkedRecord
    from consent.catalogue import ensure_purposes
    from consent.models import Action, Channel, ConsentDocument, ConsentEvent, ConsentVersion, Party
    from portal.extensions import db
    from portal.orm import utcnow
    from portal.people.models import Child, Enrolment, School, SchoolClass, SchoolKind, SchoolYear
    from surveys.models import SurveySignal

    rng = random.Random(seed)
    s = db.session
    year = SchoolYear(fiscal_year=2026, starts_on=date(2026, 4, 1), ends_on=date(2027, 3, 31), is_current=True)
    s.add(year)
    schools = [School(code=f"B{i:03d}", name=f"ベンチ学校{i}", kind=SchoolKind.elementary if i < 20 else SchoolKind.junior_high)
               for i in range(25)]
    s.add_all(schools)
    s.flush()
    classes = []
    for sc in schools:
        grades = range(1, 7) if sc.kind == SchoolKind.elementary else range(7, 10)
        for g in grades:
            for k in range(5):
                classes.append(SchoolClass(school_id=sc.id, school_year_id=year.id, grade=g, name=str(k + 1)))
    s.add_all(classes)
    s.flush()
    now = utcnow()
    s.execute(insert(Child), [
        {"student_no": f"B{i:07d}", "name": f"試験 児童{i}", "name_kana": "シケン", "birth_date": date(2015, 4, 2),
         "sex": "MF"[i % 2], "created_at": now} for i in range(n)
    ])
    ids = list(s.scalars(select(Child.id).order_by(Child.id)))
    grade_of = {}
    rows = []
    for i, cid in enumerate(ids):
        c = classes[i % len(classes)]
        grade_of[cid] = c.grade
        rows.append({"child_id": cid, "school_year_id": year.id, "class_id": c.id})
    s.execute(insert(Enrolment), rows)
    purposes = ensure_purposes(s, ("data_linkage", "wellbeing_survey"))
    events = []
    at = datetime(2026, 4, 10, tzinfo=UTC)
    for p in purposes.values():
        v = s.scalar(select(ConsentVersion).where(ConsentVersion.purpose_id == p.id).order_by(ConsentVersion.version.desc()))
        doc = s.scalar(select(ConsentDocument.id).where(ConsentDocument.version_id == v.id).limit(1))
        for cid in ids:
            parties = [Party.guardian] + ([Party.child] if grade_of[cid] >= p.child_from_grade else [])
            for party in parties:
                events.append({"child_id": cid, "purpose_id": p.id, "party": party, "action": Action.grant,
                               "version": v.version, "document_id": doc, "locale": "ja", "at": at, "recorded_at": at,
                               "channel": Channel.online})
    s.execute(insert(ConsentEvent), events)
    batch = ImportBatch(source="bench", file_sha256="b" * 64, actor_kind="system")
    s.add(batch)
    s.flush()
    recs = []
    k = 0

    def rec(cid, source, day, **data):
        nonlocal k
        k += 1
        recs.append({"batch_id": batch.id, "source": source, "source_row": k, "row_key": f"r{k}", "child_id": cid,
                     "method": "student_no", "status": "linked", "record_date": day,
                     "expires_on": day + timedelta(days=400), "data": data, "created_at": now})

    signals = []
    for cid in ids:
        risk = rng.random()
        for back in range(6):
            m = 7 - back
            p_abs = 0.02 if risk < 0.9 else 0.15
            rec(cid, "attendance", date(2026, m, 1), month=f"2026-{m:02d}", school_days=20,
                days_absent=sum(rng.random() < p_abs for _ in range(20)), days_late=rng.randrange(3), nurse_visits=rng.randrange(3))
        if rng.random() < 0.12:
            rec(cid, "jidou_fuyou", date(2026, 1, 10), payment_class="全部支給")
        if rng.random() < 0.1:
            rec(cid, "shugaku_enjo", date(2026, 4, 10), assistance_class="準要保護")
        if rng.random() < 0.05:
            rec(cid, "kyushoku", date(2026, 6, 30), months_in_arrears=rng.randrange(1, 5))
        if rng.random() < 0.5:
            rec(cid, "health", date(2026, 5, 20), check_status="受診" if rng.random() < 0.95 else "未受診",
                untreated_caries=rng.randrange(0, 5))
        if rng.random() < 0.1:
            signals.append({"child_id": cid, "kind": "low_mood_streak", "observed_at": datetime(2026, 7, 10, tzinfo=UTC)})
        if rng.random() < 0.02:
            signals.append({"child_id": cid, "kind": "help_request", "observed_at": datetime(2026, 7, 12, tzinfo=UTC)})
    for j in range(0, len(recs), 20000):
        s.execute(insert(LinkedRecord), recs[j : j + 20000])
    s.execute(insert(SurveySignal), signals)
    s.commit()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--children", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=6)
    args = ap.parse_args()

    tmp = scratch_environment("mimamori-bench-screening-")
    url = os.environ.get("DATABASE_URL")
    if url and url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    app = scratch_app(tmp, url)
    with app.app_context():
        from sqlalchemy import func, select

        from backoffice.screening import indicators, service
        from backoffice.screening import model as ml
        from backoffice.screening.models import Flag
        from backoffice.screening.rules import DEMO_RULES
        from portal.auth.principal import SYSTEM, Principal
        from portal.extensions import db

        t0 = time.perf_counter()
        build(args.children, args.seed)
        t_build = time.perf_counter() - t0
        s = db.session
        a, b = Principal("staff", 1, "data_steward"), Principal("staff", 2, "data_steward")
        rs = service.draft_rule_set(s, a, "bench", DEMO_RULES)
        service.submit_rule_set(s, a, rs.id)
        service.approve_rule_set(s, b, rs.id)
        m = ml.train(s, SYSTEM, ml.synthetic_decisions(2000, seed=1))
        ml.switch(s, SYSTEM, m.id, True)
        s.commit()

        t0 = time.perf_counter()
        table = indicators.compute(s, AS_OF)
        t_ind = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        run = service.run_screening(s, SYSTEM, trigger="bench", as_of=AS_OF)
        s.commit()
        t_run, c_run = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        run2 = service.run_screening(s, SYSTEM, trigger="bench", as_of=AS_OF)
        s.commit()
        t_run2 = time.perf_counter() - t0
        flags = s.scalar(select(func.count(Flag.id)))
        print(f"database: {db.engine.dialect.name}; data built in {t_build:.1f} s")
        print(f"children screened: {len(table)}; indicators alone: {t_ind:.2f} s")
        print(f"first run (indicators, rules, model, flags): {t_run:.2f} s wall, {c_run:.2f} s CPU of this process; "
              f"new flags {run.counts['new_flags']}")
        print(f"second run (refresh, nothing new): {t_run2:.2f} s; new flags {run2.counts['new_flags']}")
        print(f"model AUC {m.card['auc']} vs rules {m.card['auc_rules']} vs school {m.card['auc_school']}")
        ok = t_run < 30
        print(f"children={len(table)} indicators_s={t_ind:.2f} run_s={t_run:.2f} run_cpu_s={c_run:.2f} rerun_s={t_run2:.2f} "
              f"flags={flags} model_auc={m.card['auc']} under_30s={ok}")


if __name__ == "__main__":
    main()
