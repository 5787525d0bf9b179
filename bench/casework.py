"""Casework benchmark: a school's case register with 1,000 children, rendered by the real page.

    .venv/bin/python bench/casework.py [--children 1000] [--runs 40]

Builds a throwaway SQLite database with one school, its classes and 1,000
children, each with a case at some stage (plans, actions and referrals on
some), signs in the school lead with the test client and renders
``/staff/cases/`` (the register) and ``/staff/cases/dashboard`` repeatedly.
Prints the median and 95th percentile render times and the SQL statements
per render. The bar: the register renders in under 200 ms. The last line is
key=value pairs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._scratch import scratch_app, scratch_environment  # noqa: E402


def build(app, n_children: int, seed: int) -> int:
    from sqlalchemy import insert

    from backoffice.casework.models import (
        Case,
        CaseSource,
        CaseStatus,
        Decision,
        PlanAction,
        Referral,
        ReferralTarget,
        SupportPlan,
    )
    from portal.auth.passwords import hash_password
    from portal.extensions import db
    from portal.orm import utcnow
    from portal.people.models import (
        Child,
        Enrolment,
        Role,
        School,
        SchoolClass,
        SchoolKind,
        SchoolYear,
        Staff,
        StaffScope,
    )

    rng = random.Random(seed)
    s = db.session
    year = SchoolYear(fiscal_year=2026, starts_on=date(2026, 4, 1), ends_on=date(2027, 3, 31), is_current=True)
    school = School(code="B001", name="ベンチ小学校", kind=SchoolKind.elementary)
    s.add_all([year, school])
    s.flush()
    pw = hash_password("bench-password")
    lead = Staff(email="lead@bench.invalid", name="校長", role=Role.school_lead, password_hash=pw)
    counsellor = Staff(email="c@bench.invalid", name="相談員", role=Role.counsellor, password_hash=pw)
    s.add_all([lead, counsellor])
    s.flush()
    s.add_all([StaffScope(staff_id=lead.id, school_id=school.id), StaffScope(staff_id=counsellor.id, school_id=school.id)])
    per_class = 34
    n_classes = (n_children + per_class - 1) // per_class
    teachers, classes = [], []
    for i in range(n_classes):
        t = Staff(email=f"t{i}@bench.invalid", name=f"担任{i}", role=Role.teacher, password_hash=pw)
        s.add(t)
        s.flush()
        s.add(StaffScope(staff_id=t.id, school_id=school.id))
        c = SchoolClass(school_id=school.id, school_year_id=year.id, grade=1 + i % 6, name=str(1 + i // 6),
                        homeroom_teacher_id=t.id)
        s.add(c)
        s.flush()
        teachers.append(t)
        classes.append(c)
    now = utcnow()
    s.execute(insert(Child), [
        {"student_no": f"B{i:07d}", "name": f"試験 児童{i}", "name_kana": f"シケン ジドウ{i}",
         "birth_date": date(2017, 4, 2) + timedelta(days=i % 365), "sex": "MF"[i % 2], "created_at": now}
        for i in range(n_children)
    ])
    child_ids = [cid for (cid,) in s.execute(Child.__table__.select().with_only_columns(Child.id).order_by(Child.id))]
    s.execute(insert(Enrolment), [
        {"child_id": cid, "school_year_id": year.id, "class_id": classes[i // per_class].id, "attendance_no": i % per_class + 1}
        for i, cid in enumerate(child_ids)
    ])
    statuses = list(CaseStatus)
    today = date.today()
    cases = []
    for i, cid in enumerate(child_ids):
        st = statuses[i % len(statuses)]
        flagged = now - timedelta(days=rng.randint(5, 90))
        decided = flagged + timedelta(days=rng.randint(1, 30)) if st not in ("flagged", "assessed", "reopened") else None
        cases.append({
            "child_id": cid, "school_id": school.id, "teacher_id": classes[i // per_class].homeroom_teacher_id,
            "source": CaseSource.flag, "urgency": rng.randint(1, 3), "status": st, "flagged_at": flagged,
            "assessment_due": today + timedelta(days=rng.randint(-10, 14)),
            "decided_at": decided, "decision": Decision.support_plan if decided else None,
            "review_due": today + timedelta(days=rng.randint(-5, 60)) if decided else None,
            "closed_at": now if st == "closed" else None, "uses_linkage": True, "uses_survey": False,
            "created_at": flagged, "updated_at": now, "version": 1,
        })
    s.execute(insert(Case), cases)
    case_rows = s.execute(Case.__table__.select().with_only_columns(Case.id, Case.child_id, Case.status)).all()
    plans = [{"case_id": r.id, "child_id": r.child_id, "created_by_id": counsellor.id, "created_at": now,
              "review_date": today + timedelta(days=30)} for r in case_rows if r.status in ("plan_active", "under_review")]
    if plans:
        s.execute(insert(SupportPlan), plans)
    plan_rows = s.execute(SupportPlan.__table__.select().with_only_columns(SupportPlan.id, SupportPlan.case_id,
                                                                           SupportPlan.child_id)).all()
    s.execute(insert(PlanAction), [
        {"plan_id": p.id, "case_id": p.case_id, "child_id": p.child_id, "text": "家庭訪問", "owner_id": counsellor.id,
         "due_on": today + timedelta(days=rng.randint(-7, 21))}
        for p in plan_rows for _ in range(2)
    ])
    s.execute(insert(Referral), [
        {"case_id": p.case_id, "child_id": p.child_id, "school_id": school.id, "target": ReferralTarget.counsellor,
         "receiver_id": counsellor.id, "external": False, "status": "in_progress", "created_by_id": lead.id,
         "created_at": now, "answer_due": today + timedelta(days=rng.randint(-3, 7))}
        for p in plan_rows
    ])
    s.commit()
    return lead.id


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--children", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    from sqlalchemy import event

    from portal.extensions import db

    app = scratch_app(scratch_environment("mimamori-bench-casework-"), RATELIMIT_ENABLED=False)
    with app.app_context():
        t = time.perf_counter()
        lead_id = build(app, args.children, args.seed)
        build_s = time.perf_counter() - t
        from portal.auth.service import principal_for
        from portal.people.models import Staff

        principal = principal_for(db.session.get(Staff, lead_id))
        db.session.remove()
        statements = {"n": 0}

        def _count(*_a, **_k):
            statements["n"] += 1

        event.listen(db.engine, "before_cursor_execute", _count)

    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = principal.get_id()
        sess["_fresh"] = True
        sess["last_seen"] = time.time()
        sess["locale"] = "ja"

    results = {}
    for name, url in [("register", "/staff/cases/"), ("dashboard", "/staff/cases/dashboard")]:
        times, cpu, queries = [], [], []
        for i in range(args.runs + 3):
            statements["n"] = 0
            with client.session_transaction() as sess:
                sess["last_seen"] = time.time()
            t, c = time.perf_counter(), time.process_time()
            resp = client.get(url)
            elapsed, used = (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000
            if resp.status_code != 200:
                raise SystemExit(f"{url}: HTTP {resp.status_code}")
            if i >= 3:  # warm-up runs are not counted
                times.append(elapsed)
                cpu.append(used)
                queries.append(statements["n"])
        times.sort()
        p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
        # CPU time of this process (the request runs in it, SQLite included): what the render costs
        # when the machine is not shared; wall time also counts waiting for a core.
        results[name] = (statistics.median(times), p95, max(queries), len(resp.data), statistics.median(cpu))
        print(f"{name}: median {results[name][0]:.1f} ms (CPU {results[name][4]:.1f} ms), p95 {p95:.1f} ms, "
              f"{results[name][2]} SQL statements per request, {results[name][3] // 1024} KiB")
    ok = results["register"][0] < 200
    print(f"database built in {build_s:.1f} s with {args.children} children, one case each")
    print("bar: the register of a school with 1,000 children renders in under 200 ms (median): "
          + ("met" if ok else "NOT met"))
    print(f"children={args.children} register_median_ms={results['register'][0]:.1f} "
          f"register_p95_ms={results['register'][1]:.1f} register_cpu_median_ms={results['register'][4]:.1f} "
          f"register_queries={results['register'][2]} "
          f"dashboard_median_ms={results['dashboard'][0]:.1f} dashboard_p95_ms={results['dashboard'][1]:.1f} "
          f"dashboard_cpu_median_ms={results['dashboard'][4]:.1f} dashboard_queries={results['dashboard'][2]} "
          f"ok={str(ok).lower()}")


if __name__ == "__main__":
    main()
