"""Morning-peak load: concurrent check-in submissions against gunicorn on PostgreSQL.

    .venv/bin/python bench/checkin_load.py [--children 300] [--clients 16] [--workers 2] [--threads 4] [--no-pre-ping]

Creates a throwaway PostgreSQL database (like tests/conftest.py), fills it
with one junior-high class per 40 children (consent given, today's check-in
open), then serves two applications with gunicorn on localhost:

* the real application (``portal:create_app()``): each client thread POSTs
  the full check-in form of its children (CSRF token, signed-in session);
* a bare Flask + SQLAlchemy endpoint on the same database that inserts one
  row per request: the floor any Flask app on this machine can reach.

Both are warmed up the same way before measuring (the application with a
GET of the check-in page, which stores nothing). It prints throughput and
p95 latency of both and their ratio; the last line is key=value pairs.

Gunicorn: gthread workers, by default 2 workers x 4 threads for this 2-core
machine (one process per core; threads overlap the database round trips).
3x2, 2x8 and 4x2 measured no better here (the load generator and PostgreSQL
share the same two cores). The database is dropped at the end. No network beyond
localhost. Runs in well under five minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._serve import app_env, create_database, drive, drop_database, p95, serve, stop  # noqa: E402

MOOD = {"weather": "4", "sleep": "3", "breakfast": "2", "friends": "3", "worries": "0", "talk": "0"}


# -- setup ---------------------------------------------------------------------------


def seed(url: str, env: dict, n_children: int) -> list[tuple[int, str, str]]:
    """Children with consent and an open check-in; returns (assignment id, cookie, csrf token)."""
    os.environ.update(env)
    from flask import g as flask_g
    from flask import session as flask_session
    from flask_wtf.csrf import generate_csrf
    from sqlalchemy import select

    from consent.testing import give_consent
    from portal import create_app
    from portal.auth.principal import SYSTEM
    from portal.auth.service import principal_for
    from portal.extensions import db
    from portal.orm import utcnow
    from portal.people.models import (
        Child,
        Enrolment,
        Guardian,
        GuardianChild,
        School,
        SchoolClass,
        SchoolKind,
        SchoolYear,
    )
    from surveys import instruments, scheduling
    from surveys.models import Frequency, SurveyAssignment

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    out = []
    with app.app_context():
        db.create_all()
        s = db.session
        year = SchoolYear(fiscal_year=2026, starts_on=date(2026, 4, 1), ends_on=date(2027, 3, 31), is_current=True)
        school = School(code="B001", name="ベンチ中学校", kind=SchoolKind.junior_high)
        s.add_all([year, school])
        s.flush()
        inst = instruments.get("mood")
        now = utcnow()
        per_class = 40
        children = []
        for k in range((n_children + per_class - 1) // per_class):
            cls = SchoolClass(school_id=school.id, school_year_id=year.id, grade=8, name=str(k + 1))
            s.add(cls)
            s.flush()
            for i in range(min(per_class, n_children - k * per_class)):
                c = Child(student_no=f"B{k:03d}{i:04d}", name=f"負荷 太郎{k}-{i}", birth_date=date(2012, 6, 1))
                g = Guardian(name=f"負荷 保護者{k}-{i}")
                s.add_all([c, g])
                s.flush()
                s.add_all([Enrolment(child_id=c.id, school_year_id=year.id, class_id=cls.id),
                           GuardianChild(guardian_id=g.id, child_id=c.id)])
                children.append(c)
        s.flush()
        sched = scheduling.create_schedule(s, SYSTEM, scheduling.ScheduleInput(
            school_id=school.id, grade=8, instrument_code="mood", frequency=Frequency.school_day,
            window_start=scheduling.time(0, 0), window_end=scheduling.time(23, 59),
            starts_on=date(2026, 4, 1), ends_on=date(2027, 3, 31)))
        for c in children:
            give_consent(s, c, "wellbeing_survey")
            s.add(SurveyAssignment(schedule_id=sched.id, child_id=c.id, instrument_code="mood", instrument_version=inst.version,
                                   respondent="student", for_date=now.date(), opens_at=now - timedelta(hours=1),
                                   closes_at=now + timedelta(hours=3)))
        s.commit()
        rows = s.execute(
            select(SurveyAssignment.id, SurveyAssignment.child_id)
        ).all()
        serializer = app.session_interface.get_signing_serializer(app)
        cookie_name = app.config["SESSION_COOKIE_NAME"]
        for aid, cid in rows:
            child = s.get(Child, cid)
            with app.test_request_context():
                flask_session["_user_id"] = principal_for(child).get_id()
                flask_session["_fresh"] = True
                flask_session["last_seen"] = time.time() + 3600
                flask_g.pop("csrf_token", None)  # generate_csrf caches per app context
                token = generate_csrf()
                cookie = f"{cookie_name}={serializer.dumps(dict(flask_session))}"
            out.append((aid, cookie, token))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--no-pre-ping", action="store_true",
        help="serve the application without SQLAlchemy's pool_pre_ping (one round trip less a request), to weigh that setting",
    )
    args = parser.parse_args()

    name, url = create_database()
    env = app_env(url)
    procs = []
    try:
        t = time.perf_counter()
        tokens = seed(url, env, args.children)
        print(f"seeded {len(tokens)} open check-ins in {time.perf_counter() - t:.1f}s", flush=True)
        target = "portal:create_app()"
        if args.no_pre_ping:
            target = "portal:create_app({'SQLALCHEMY_ENGINE_OPTIONS': {'pool_pre_ping': False}})"
        app_proc, app_port = serve(target, env, args.workers, args.threads)
        procs.append(app_proc)
        bare_proc, bare_port = serve("bench._serve:make_bare_app()", env, args.workers, args.threads)
        procs.append(bare_proc)

        checkin_jobs = [(f"/student/checkins/{aid}", {**MOOD, "csrf_token": tok}, cookie) for aid, cookie, tok in tokens]
        bare_jobs = [(f"/insert/{aid}", dict(MOOD), "") for aid, _c, _t in tokens]
        # Warm up both the same way (connections, imports, compiled-statement
        # caches), outside the measurement: the bare app with a few inserts, the
        # application with a GET of the check-in page (which stores nothing).
        drive(bare_port, bare_jobs[: args.clients * 2], args.clients)
        warm = [(f"/student/checkins/{aid}", None, cookie) for aid, cookie, _t in tokens[: args.clients * 2]]
        drive(app_port, warm, args.clients, method="GET")
        secs_bare, lat_bare, err_bare = drive(bare_port, bare_jobs, args.clients)
        secs_app, lat_app, err_app = drive(app_port, checkin_jobs, args.clients)

        tp_app, tp_bare = len(lat_app) / secs_app, len(lat_bare) / secs_bare
        p95_app, p95_bare = p95(lat_app) * 1000, p95(lat_bare) * 1000
        print(f"check-in submissions: {len(lat_app)} in {secs_app:.2f}s  {tp_app:.1f}/s  p95 {p95_app:.1f} ms  errors {err_app}")
        print(f"bare Flask insert:    {len(lat_bare)} in {secs_bare:.2f}s  {tp_bare:.1f}/s  p95 {p95_bare:.1f} ms  errors {err_bare}")
        print(f"ratio (check-in / bare): throughput {tp_app / tp_bare:.2f}, p95 {p95_app / p95_bare:.2f}x")
        print(
            f"checkin_rps={tp_app:.1f} checkin_p95_ms={p95_app:.1f} bare_rps={tp_bare:.1f} bare_p95_ms={p95_bare:.1f} "
            f"throughput_ratio={tp_app / tp_bare:.3f} p95_ratio={p95_app / p95_bare:.3f} "
            f"clients={args.clients} workers={args.workers} threads={args.threads} pre_ping={not args.no_pre_ping} submissions={len(lat_app)} errors={err_app + err_bare}"
        )
    finally:
        stop(procs)
        drop_database(name)


if __name__ == "__main__":
    main()
