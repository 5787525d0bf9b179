"""Benchmark: the consent gate over a municipality's children.

    .venv/bin/python bench/consent_gate.py [--children 20000] [--repeat 5]

Builds its own throwaway SQLite database with synthetic children (grades 1-9)
and consent events for the three demo purposes (guardian grants, junior-high
children's own grants, some withdrawals, a re-consent after a new version),
then measures:

* the gate as one SELECT of every consented child (what linkage and survey
  assignment join against), against a baseline that loads every event into
  Python and applies the rule there;
* ``is_consented`` for single children (what a page asks);
* the coverage report (consent rates by school, grade and purpose);
* the family page's state of every purpose for one child.

Times are the median of ``--repeat`` runs. The last line is key=value pairs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._scratch import scratch_app, scratch_environment  # noqa: E402

_tmp = scratch_environment("mimamori-bench-consent-")

from sqlalchemy import func, insert, select  # noqa: E402

from portal.extensions import db  # noqa: E402
from portal.people.models import Child, Enrolment, School, SchoolClass, SchoolKind, SchoolYear  # noqa: E402

CODES = ("data_linkage", "wellbeing_survey", "share_with_partners")


def build(n_children: int, rng: random.Random) -> None:
    from consent.catalogue import ensure_purposes
    from consent.models import ConsentDocument, ConsentEvent, ConsentVersion

    s = db.session
    year = SchoolYear(fiscal_year=2026, starts_on=date(2026, 4, 1), ends_on=date(2027, 3, 31), is_current=True)
    s.add(year)
    s.flush()
    per_school = 600
    schools = [School(code=f"B{k:03d}", name=f"ベンチ学校{k}", name_en=f"Bench {k}", kind=SchoolKind.elementary,
                      district=f"d{k}") for k in range(max(1, -(-n_children // per_school)))]
    s.add_all(schools)
    s.flush()
    classes = [SchoolClass(school_id=sc.id, school_year_id=year.id, grade=g, name="1") for sc in schools
               for g in range(1, 10)]
    s.add_all(classes)
    s.flush()
    by_school: dict[int, list[SchoolClass]] = {}
    for c in classes:
        by_school.setdefault(c.school_id, []).append(c)
    purposes = ensure_purposes(s)
    docs = {code: s.scalar(select(ConsentDocument.id).join(ConsentVersion).where(ConsentVersion.purpose_id == p.id)
                           .limit(1)) for code, p in purposes.items()}
    children, enrols, events = [], [], []
    start = datetime(2026, 4, 8, tzinfo=UTC)
    for i in range(n_children):
        cid = i + 1
        cls = by_school[schools[i // per_school].id][i % 9]
        children.append({"id": cid, "student_no": f"N{i:08d}", "name": f"児童 {i}", "name_kana": "ジドウ",
                         "birth_date": date(2026 - 6 - cls.grade, 6, 1), "locale": "ja", "failed_logins": 0,
                         "session_version": 1, "address": ""})
        enrols.append({"child_id": cid, "school_year_id": year.id, "class_id": cls.id, "attendance_no": i % 40 + 1})
        for code in CODES:
            if rng.random() < 0.2:
                continue
            at = start + timedelta(minutes=rng.randrange(60 * 24 * 20))
            base = {"child_id": cid, "purpose_id": purposes[code].id, "version": 1, "document_id": docs[code],
                    "locale": "ja", "channel": "online", "recorded_at": at}
            events.append({**base, "party": "guardian", "action": "grant", "at": at})
            if cls.grade >= 7 and rng.random() < 0.85:
                events.append({**base, "party": "child", "action": "grant", "at": at + timedelta(days=1)})
            if rng.random() < 0.05:
                events.append({**base, "party": "guardian", "action": "withdraw", "at": at + timedelta(days=5)})
                if rng.random() < 0.5:
                    events.append({**base, "party": "guardian", "action": "grant", "at": at + timedelta(days=9)})
    for table, rows in ((Child, children), (Enrolment, enrols), (ConsentEvent, events)):
        for k in range(0, len(rows), 5000):
            s.execute(insert(table), rows[k : k + 5000])
    s.commit()


def python_baseline(session) -> set[int]:
    """The rule applied in Python over every event: the straightforward way."""
    from consent.models import ConsentEvent, ConsentPurpose, ConsentVersion, OldConsent
    from portal.auth.access import current_year_id_subquery

    p = session.scalar(select(ConsentPurpose).where(ConsentPurpose.code == "data_linkage"))
    valid_from = session.scalar(select(func.max(ConsentVersion.version)).where(
        ConsentVersion.purpose_id == p.id, ConsentVersion.old_consent == OldConsent.lapses)) or 1
    grades = dict(session.execute(select(Enrolment.child_id, SchoolClass.grade).join(SchoolClass)
                                  .where(Enrolment.school_year_id == current_year_id_subquery())).all())
    latest: dict[tuple[int, str], tuple] = {}
    for cid, party, action, version, at, eid in session.execute(
        select(ConsentEvent.child_id, ConsentEvent.party, ConsentEvent.action, ConsentEvent.version, ConsentEvent.at,
               ConsentEvent.id).where(ConsentEvent.purpose_id == p.id)
    ):
        key = (cid, party)
        if key not in latest or (at, eid) > latest[key][0]:
            latest[key] = ((at, eid), action, version)

    def ok(cid, party):
        v = latest.get((cid, party))
        return v is not None and v[1] == "grant" and v[2] >= valid_from

    kids = {cid for cid, _party in latest}
    return {c for c in kids if ok(c, "guardian") and (grades.get(c, 0) < p.child_from_grade or ok(c, "child"))}


def median_time(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        db.session.expunge_all()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--children", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    app = scratch_app(_tmp)
    with app.app_context():
        from consent import reports, service
        from consent.gate import consented_child_ids, is_consented
        from consent.models import ConsentEvent

        t0 = time.perf_counter()
        build(args.children, random.Random(7))
        n_events = db.session.scalar(select(func.count(ConsentEvent.id)))
        print(f"built {args.children} children, {n_events} consent events in {time.perf_counter() - t0:.1f}s")

        s = db.session
        t_gate, ids = median_time(lambda: set(s.scalars(consented_child_ids("data_linkage"))), args.repeat)
        t_base, base = median_time(lambda: python_baseline(s), args.repeat)
        assert ids == base, "the gate and the baseline disagree"
        print(f"gate: {len(ids)} consented children in {t_gate * 1000:.0f} ms (python baseline {t_base * 1000:.0f} ms)")

        sample = random.Random(3).sample(range(1, args.children + 1), min(500, args.children))
        t_one, _ = median_time(lambda: [is_consented(s, cid, "data_linkage") for cid in sample], args.repeat)
        per_child_ms = t_one / len(sample) * 1000
        print(f"is_consented: {per_child_ms:.2f} ms per child ({len(sample)} children)")

        t_cov, (purposes, rows) = median_time(lambda: reports.coverage(s), args.repeat)
        print(f"coverage: {len(rows)} school-grade rows x {len(purposes)} purposes in {t_cov * 1000:.0f} ms")

        t_fam, _ = median_time(lambda: service.purpose_states_for(s, sample[:3]), args.repeat)
        print(f"family page states (3 children): {t_fam * 1000:.1f} ms")

        print(f"children={args.children} events={n_events} consented={len(ids)} gate_ms={t_gate * 1000:.0f} "
              f"baseline_ms={t_base * 1000:.0f} ratio={t_base / t_gate:.2f} is_consented_ms={per_child_ms:.2f} "
              f"coverage_ms={t_cov * 1000:.0f} family_states_ms={t_fam * 1000:.1f}")


if __name__ == "__main__":
    main()
