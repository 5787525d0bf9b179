"""Benchmark: a campaign to 20,000 families, and the letters for one school of 500.

    .venv/bin/python bench/campaign.py [--families 20000] [--school-families 500]

Builds its own throwaway SQLite database with synthetic families, then
measures (1) queuing a campaign to every family (inbox, e-mail and letter
deliveries recorded) and (2) rendering the letter PDFs for one school whose
families have no e-mail (one PDF per class, one page per family, half in
Japanese, half in English). Targets: both under a minute. The last line is
key=value pairs.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench._scratch import scratch_app, scratch_environment  # noqa: E402

_tmp = scratch_environment("mimamori-bench-campaign-")

from sqlalchemy import insert  # noqa: E402

from portal.auth.principal import SYSTEM  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.people.models import (  # noqa: E402
    Child,
    Enrolment,
    Guardian,
    GuardianChild,
    School,
    SchoolClass,
    SchoolKind,
    SchoolYear,
)


def build(families: int, school_families: int) -> int:
    """Synthetic roster; returns the id of the letters school."""
    s = db.session
    year = SchoolYear(fiscal_year=2026, starts_on=date(2026, 4, 1), ends_on=date(2027, 3, 31), is_current=True)
    s.add(year)
    s.flush()
    per_school = school_families
    n_schools = max(1, -(-families // per_school))
    schools, classes = [], []
    for k in range(n_schools):
        sc = School(code=f"B{k:03d}", name=f"ベンチ小学校{k}", name_en=f"Bench ES {k}", kind=SchoolKind.elementary, district=f"d{k}")
        s.add(sc)
        schools.append(sc)
    s.flush()
    for sc in schools:
        for grade in range(1, 7):
            for name in ("1", "2", "3"):
                classes.append(SchoolClass(school_id=sc.id, school_year_id=year.id, grade=grade, name=name))
    s.add_all(classes)
    s.flush()
    by_school: dict[int, list[SchoolClass]] = {}
    for c in classes:
        by_school.setdefault(c.school_id, []).append(c)
    letters_school = schools[0].id
    guardians, children, links, enrols = [], [], [], []
    for i in range(families):
        school_id = schools[i // per_school % n_schools].id
        cls = by_school[school_id][i % 18]
        gid = cid = i + 1
        if school_id == letters_school:
            email, pw = None, None  # this school's families get paper letters
        else:
            r = i % 10
            email = f"family{i}@bench.invalid" if r < 9 else None
            pw = "x" if r < 7 else None
        guardians.append({"id": gid, "name": f"保護者 {i}", "name_kana": "", "email": email, "password_hash": pw,
                          "locale": "en" if i % 2 else "ja", "address": "", "failed_logins": 0, "session_version": 1})
        children.append({"id": cid, "student_no": f"N{i:08d}", "name": f"児童 {i}", "name_kana": f"ジドウ {i}",
                         "birth_date": date(2026 - 6 - cls.grade, 6, 1) + timedelta(days=i % 300), "locale": "ja",
                         "failed_logins": 0, "session_version": 1, "address": ""})
        links.append({"guardian_id": gid, "child_id": cid, "relationship": "parent", "parental_authority": True})
        enrols.append({"child_id": cid, "school_year_id": year.id, "class_id": cls.id, "attendance_no": i % 40 + 1})
    for table, rows in ((Guardian, guardians), (Child, children), (GuardianChild, links), (Enrolment, enrols)):
        for k in range(0, len(rows), 5000):
            s.execute(insert(table), rows[k : k + 5000])
    s.commit()
    return letters_school


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", type=int, default=20000)
    ap.add_argument("--school-families", type=int, default=500)
    args = ap.parse_args()
    app = scratch_app(_tmp)
    with app.app_context():
        from resources import campaigns as camp
        from resources import letters
        from resources import service as catalogue
        from resources.service import ServiceData

        t0 = time.perf_counter()
        letters_school = build(args.families, args.school_families)
        t_build = time.perf_counter() - t0
        services = []
        for k in range(3):
            sv = catalogue.save_service(db.session, SYSTEM, ServiceData(
                name_ja=f"子ども食堂 {k}", name_en=f"Children's cafeteria {k}",
                description_ja="毎週水曜日の夕方に夕ごはん。" * 3, description_en="Dinner every Wednesday. " * 3,
                categories=["childrens_cafeteria"], address="石川県みまもり市ひだまり町1-1", phone="0761-00-0000"))
            catalogue.publish(db.session, SYSTEM, sv)
            services.append(sv)
        c = camp.save_campaign(db.session, SYSTEM, camp.CampaignData(
            title_ja="地域の居場所のお知らせ", title_en="Local places for your family",
            body_ja="すべてのご家庭にお届けしています。", body_en="We send this to every family.",
            service_ids=[sv.id for sv in services]))
        db.session.commit()

        t0 = time.perf_counter()
        counts = camp.send_now(db.session, SYSTEM, c)
        db.session.commit()
        t_queue = time.perf_counter() - t0
        total = sum(counts.values())
        print(f"roster built: {args.families} families in {t_build:.1f}s")
        print(f"campaign queued: {total} deliveries ({counts}) to {args.families} families in {t_queue:.2f}s")

        with app.test_request_context():
            t0 = time.perf_counter()
            body = letters.render_school_zip(db.session, SYSTEM, c, letters_school)
            db.session.commit()
            t_letters = time.perf_counter() - t0
        rows = letters.letters_by_class(db.session, c.id, [letters_school])
        pages = sum(r[2] for r in rows)
        print(f"letters: {len(rows)} class PDFs, {pages} pages, {len(body) / 1e6:.1f} MB zip in {t_letters:.2f}s")
        ok = t_queue < 60 and t_letters < 60
        print(f"families={args.families} deliveries={total} queue_seconds={t_queue:.2f} "
              f"letter_pages={pages} letter_pdfs={len(rows)} letters_seconds={t_letters:.2f} ok={int(ok)}")


if __name__ == "__main__":
    main()
