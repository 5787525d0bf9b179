"""A school morning against gunicorn on PostgreSQL: sign-ins, check-ins, teachers' pages, the case register.

    .venv/bin/python bench/morning.py [--classes 2] [--guardian-share 0.25] [--case-share 0.5]
                                      [--refreshes 10] [--clients 16] [--workers 2] [--threads 4]
                                      [--password-hash owasp|rfc9106] [--audit-lock]

Creates a throwaway PostgreSQL database with one junior-high school: classes
of 40 children (consent given, today's mood check-in open, a case for a
share of them), a homeroom teacher per class and a school lead, every staff
member with a password and a TOTP secret. Then it serves the application
(``portal:create_app()``) and a bare Flask + SQLAlchemy app with gunicorn on
localhost and plays the morning with ``--clients`` concurrent browsers, each
with its own cookies, as a real browser would (GET the form, read its CSRF
token, POST it):

* every student: sign-in page, sign-in with 児童生徒番号 + PIN, the home
  page, the check-in page, the check-in submitted;
* a share of the guardians: sign-in page, e-mail + password, the family home;
* every teacher and the lead: password page, password, TOTP page, a code
  computed with pyotp from the seeded secret;
* then, spread over the morning while the children check in, each teacher
  opens ``--refreshes`` times the staff home, today's class list and the
  screening queue; the lead opens the case register as often.

The bare app gets the same number of GETs (one SELECT, a small template) and
POSTs (one INSERT) from as many clients: the floor of the stack on this
machine. Both are warmed up (the application with signed-in GETs of every
page kind, cookies made in the seed; nothing measured). It prints, per kind
of request and overall, the count, p50, p95 and p99, throughput of both
apps and their ratio, and the CPU the gunicorn processes used a request
(from /proc: on a shared machine wall-clock latency is mostly waiting for a
core, CPU is the steadier figure); the last line is key=value pairs.

Where the time went, and what was done: with argon2-cffi's default (RFC
9106 low-memory: m=64 MiB, t=3, p=4) a sign-in cost about 210 ms of CPU and
sign-ins took three quarters of the server's CPU in this morning (25 req/s,
74 ms of CPU a request). The default is now OWASP's first argon2id set
(m=19 MiB, t=2, p=1; about 30 ms), which gave 62-68 req/s and 23-26 ms a
request on the same machine; ``--password-hash rfc9106`` measures the other
set. Pages also commit before they render, so the audit chain's lock is no
longer held while a template renders (not measured apart). Every other page
costs 5 to 50 ms.

``--audit-lock`` plays the same morning a second time, on a database seeded
the same way, with ``MIMAMORI_AUDIT_SEQUENCING=inline``: every audit row
chained in its request under the chain's database-wide lock, held from the
page's first audit write to its commit (the old way), against the default
``deferred`` (rows written unchained, no lock; a sequencer chains them
after commit). The last line then carries both throughputs and their ratio.

Passwords and PINs use the application's real argon2 parameters (the seed
hashes one password and one PIN once and gives them to everyone, which
changes nothing at sign-in). Sign-in rate limits are raised for the run (all
browsers share 127.0.0.1). Gunicorn as in ``bench/checkin_load.py``: gthread,
2 workers x 4 threads on this 2-core machine. The database is dropped at the
end. No network beyond localhost. Under five minutes at the default size.
"""

from __future__ import annotations

import argparse
import http.client
import http.cookies
import os
import random
import re
import sys
import threading
import time
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._serve import (  # noqa: E402
    app_env,
    create_database,
    drive,
    drop_database,
    load_average,
    percentile,
    serve,
    server_cpu_seconds,
    stop,
)

MOOD = {"weather": "4", "sleep": "3", "breakfast": "2", "friends": "3", "worries": "0", "talk": "0"}
PASSWORD = "morning-bench-password"
PIN = "482915"
PER_CLASS = 40
KINDS = (
    "signin_form", "student_signin", "guardian_signin", "staff_signin", "student_home", "family_home",
    "checkin_form", "checkin", "teacher_dashboard", "class_list", "case_register",
)
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


# -- the school --------------------------------------------------------------------------


@dataclass
class Person:
    kind: str  # student / guardian / teacher / lead
    login: str  # 児童生徒番号 or e-mail
    totp_secret: str | None = None
    assignment_id: int | None = None
    class_id: int | None = None
    warm_cookie: str = ""  # a signed-in session made in the seed, for the warm-up only


def seed(url: str, env: dict, n_classes: int, guardian_share: float, case_share: float, rng: random.Random) -> list[Person]:
    """The school, its people and today's open check-ins; returns who comes this morning."""
    os.environ.update(env)
    from flask import session as flask_session
    from sqlalchemy import insert, select

    from backoffice.casework.models import Case, CaseSource, CaseStatus
    from consent.testing import give_consent
    from portal import create_app
    from portal.auth.passwords import hash_password
    from portal.auth.principal import SYSTEM
    from portal.auth.service import new_totp_secret, principal_for, set_totp_secret
    from portal.extensions import db
    from portal.orm import utcnow
    from portal.people.models import (
        Child,
        Enrolment,
        Guardian,
        GuardianChild,
        Role,
        School,
        SchoolClass,
        SchoolKind,
        SchoolYear,
        Staff,
        StaffScope,
    )
    from surveys import instruments, scheduling
    from surveys.models import Frequency, SurveyAssignment

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    people: list[Person] = []
    with app.app_context():
        db.create_all()
        s = db.session
        pw_hash, pin_hash = hash_password(PASSWORD), hash_password(PIN)
        year = SchoolYear(fiscal_year=2026, starts_on=date(2026, 4, 1), ends_on=date(2027, 3, 31), is_current=True)
        school = School(code="M001", name="朝の中学校", kind=SchoolKind.junior_high)
        s.add_all([year, school])
        s.flush()

        def staff_member(email: str, name: str, role: Role, kind: str) -> tuple[Staff, Person]:
            st = Staff(email=email, name=name, role=role, password_hash=pw_hash)
            secret = new_totp_secret()
            set_totp_secret(st, secret)
            s.add(st)
            s.flush()
            s.add(StaffScope(staff_id=st.id, school_id=school.id))
            return st, Person(kind, email, totp_secret=secret)

        lead, lead_person = staff_member("lead@morning.invalid", "校長", Role.school_lead, "lead")
        staff_people = [(lead, lead_person)]
        children, guardians = [], []
        for k in range(n_classes):
            teacher, tp = staff_member(f"t{k}@morning.invalid", f"担任{k}", Role.teacher, "teacher")
            cls = SchoolClass(school_id=school.id, school_year_id=year.id, grade=7 + k % 3, name=str(1 + k // 3),
                              homeroom_teacher_id=teacher.id)
            s.add(cls)
            s.flush()
            tp.class_id = cls.id
            staff_people.append((teacher, tp))
            for i in range(PER_CLASS):
                c = Child(student_no=f"M{k:02d}{i:04d}", name=f"朝 太郎{k}-{i}", birth_date=date(2013 - k % 3, 6, 1),
                          pin_hash=pin_hash)
                g = Guardian(name=f"朝 保護者{k}-{i}", email=f"g{k}-{i}@morning.invalid", password_hash=pw_hash,
                             email_confirmed_at=utcnow())
                s.add_all([c, g])
                s.flush()
                s.add_all([Enrolment(child_id=c.id, school_year_id=year.id, class_id=cls.id, attendance_no=i + 1),
                           GuardianChild(guardian_id=g.id, child_id=c.id)])
                children.append((c, teacher))
                guardians.append(g)
        s.flush()
        inst = instruments.get("mood")
        now = utcnow()
        for grade in sorted({7 + k % 3 for k in range(n_classes)}):
            sched = scheduling.create_schedule(s, SYSTEM, scheduling.ScheduleInput(
                school_id=school.id, grade=grade, instrument_code="mood", frequency=Frequency.school_day,
                window_start=scheduling.time(0, 0), window_end=scheduling.time(23, 59),
                starts_on=date(2026, 4, 1), ends_on=date(2027, 3, 31)))
            for c, _t in children:
                if c.birth_date.year == 2013 - (grade - 7):
                    s.add(SurveyAssignment(schedule_id=sched.id, child_id=c.id, instrument_code="mood",
                                           instrument_version=inst.version, respondent="student", for_date=now.date(),
                                           opens_at=now - timedelta(hours=1), closes_at=now + timedelta(hours=3)))
        for c, _t in children:
            give_consent(s, c, "wellbeing_survey")
        statuses = list(CaseStatus)
        today = date.today()
        cases = []
        for i, (c, teacher) in enumerate(children):
            if rng.random() >= case_share:
                continue
            st = statuses[i % len(statuses)]
            flagged = now - timedelta(days=rng.randint(5, 90))
            decided = flagged + timedelta(days=rng.randint(1, 30)) if st not in ("flagged", "assessed", "reopened") else None
            cases.append({
                "child_id": c.id, "school_id": school.id, "teacher_id": teacher.id, "source": CaseSource.flag,
                "urgency": rng.randint(1, 3), "status": st, "flagged_at": flagged,
                "assessment_due": today + timedelta(days=rng.randint(-10, 14)), "decided_at": decided,
                "review_due": today + timedelta(days=rng.randint(-5, 60)) if decided else None,
                "closed_at": now if st == "closed" else None, "uses_linkage": True, "uses_survey": False,
                "created_at": flagged, "updated_at": now, "version": 1,
            })
        if cases:
            s.execute(insert(Case), cases)
        s.commit()
        aid_of = dict(s.execute(select(SurveyAssignment.child_id, SurveyAssignment.id)).all())

        serializer = app.session_interface.get_signing_serializer(app)
        cookie_name = app.config["SESSION_COOKIE_NAME"]

        def forged(obj) -> str:
            with app.test_request_context():
                flask_session["_user_id"] = principal_for(obj).get_id()
                flask_session["_fresh"] = True
                flask_session["last_seen"] = time.time() + 3600
                return f"{cookie_name}={serializer.dumps(dict(flask_session))}"

        for st, person in staff_people:
            person.warm_cookie = forged(st)
            people.append(person)
        for c, _t in children:
            people.append(Person("student", c.student_no, assignment_id=aid_of[c.id]))
        people[-1].warm_cookie = forged(children[-1][0])
        visiting = [g for g in guardians if rng.random() < guardian_share] or guardians[:1]
        for g in visiting:
            people.append(Person("guardian", g.email))
        people[-1].warm_cookie = forged(visiting[-1])
    return people


# -- browsers ------------------------------------------------------------------------------


class StepFailed(Exception):
    pass


@dataclass
class Stats:
    latencies: dict = field(default_factory=lambda: defaultdict(list))
    errors: dict = field(default_factory=lambda: defaultdict(int))
    first_errors: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Browser:
    """One person's cookies; requests go over the calling thread's keep-alive connection.

    ``local`` is one ``threading.local`` for the whole run (a teacher's
    refreshes may run on two client threads at once: each uses its own connection).
    """

    def __init__(self, port: int, stats: Stats, local: threading.local):
        self.port, self.stats, self.local = port, stats, local
        self.cookies: dict[str, str] = {}
        self.signed_in = threading.Event()

    def _conn(self) -> http.client.HTTPConnection:
        if getattr(self.local, "conn", None) is None:
            self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        return self.local.conn

    def request(self, kind: str, method: str, path: str, form: dict | None = None, *, expect: str | None = None) -> str:
        """Send one request, keep its cookies, time it under ``kind``; the body of a 200.

        ``expect`` (a POST): the path the redirect must go to. Anything else fails the step.
        """
        body = urllib.parse.urlencode(form) if form is not None else None
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        t = time.perf_counter()
        for attempt in (1, 2):
            reused = getattr(self.local, "conn", None) is not None
            try:
                conn = self._conn()
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                text = resp.read().decode("utf-8", "replace")
                break
            except OSError as exc:
                self.local.conn = None
                # gunicorn closes a keep-alive connection idle for a few seconds; a browser
                # then sends the request again on a new one (nothing reached the server).
                stale = reused and isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
                if attempt == 2 or not stale:
                    self._fail(kind, f"{method} {path}: {type(exc).__name__}")
        dt = time.perf_counter() - t
        for header in resp.msg.get_all("Set-Cookie") or []:
            jar = http.cookies.SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["expires"] and "1970" in morsel["expires"] or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        location = urllib.parse.urlsplit(resp.getheader("Location") or "").path
        ok = (resp.status == 302 and (location == expect or location.endswith("/done"))) if expect else resp.status == 200
        with self.stats.lock:
            self.stats.latencies[kind].append(dt)
        if not ok:
            self._fail(kind, f"{method} {path}: {resp.status} {location}")
        return text

    def _fail(self, kind: str, what: str):
        with self.stats.lock:
            self.stats.errors[kind] += 1
            if len(self.stats.first_errors) < 3:
                self.stats.first_errors.append(f"{kind}: {what}")
        raise StepFailed(what)

    def form_token(self, kind: str, path: str) -> str:
        match = CSRF.search(self.request(kind, "GET", path))
        if match is None:
            self._fail(kind, f"GET {path}: no CSRF token")
        return match.group(1)


def student_morning(b: Browser, p: Person) -> None:
    token = b.form_token("signin_form", "/student/signin")
    b.request("student_signin", "POST", "/student/signin", {"student_no": p.login, "pin": PIN, "csrf_token": token},
              expect="/student/")
    b.request("student_home", "GET", "/student/")
    path = f"/student/checkins/{p.assignment_id}"
    token = b.form_token("checkin_form", path)
    b.request("checkin", "POST", path, {**MOOD, "csrf_token": token}, expect="/done")


def guardian_morning(b: Browser, p: Person) -> None:
    token = b.form_token("signin_form", "/family/signin")
    b.request("guardian_signin", "POST", "/family/signin", {"email": p.login, "password": PASSWORD, "csrf_token": token},
              expect="/family/")
    b.request("family_home", "GET", "/family/")


def staff_sign_in(b: Browser, p: Person) -> None:
    import pyotp

    try:
        token = b.form_token("signin_form", "/staff/signin")
        b.request("staff_signin", "POST", "/staff/signin", {"email": p.login, "password": PASSWORD, "csrf_token": token},
                  expect="/staff/totp")
        token = b.form_token("signin_form", "/staff/totp")
        b.request("staff_signin", "POST", "/staff/totp", {"code": pyotp.TOTP(p.totp_secret).now(), "csrf_token": token},
                  expect="/staff/")
    finally:
        b.signed_in.set()


def staff_refresh(b: Browser, p: Person) -> None:
    b.signed_in.wait(120)
    if p.kind == "lead":
        b.request("case_register", "GET", "/staff/cases/")
        return
    b.request("teacher_dashboard", "GET", "/staff/")
    b.request("class_list", "GET", f"/staff/checkins?class_id={p.class_id}")
    b.request("teacher_dashboard", "GET", "/staff/screening/")


def plan(people: list[Person], refreshes: int, rng: random.Random) -> list[tuple]:
    """The morning as (step function, person) in arrival order: staff first, refreshes spread over the rest."""
    staff = [p for p in people if p.kind in ("teacher", "lead")]
    families = [(student_morning if p.kind == "student" else guardian_morning, p) for p in people if p.kind in ("student", "guardian")]
    rng.shuffle(families)
    refresh = [(staff_refresh, p) for _ in range(refreshes) for p in staff]
    every = max(1, len(families) // max(1, len(refresh)))
    out = [(staff_sign_in, p) for p in staff]
    for i, item in enumerate(families):
        out.append(item)
        if i % every == every - 1 and refresh:
            out.append(refresh.pop(0))
    return out + refresh


def play(port: int, steps: list[tuple], clients: int) -> tuple[float, Stats]:
    stats = Stats()
    browsers: dict[str, Browser] = {}
    queue = list(reversed(steps))
    qlock = threading.Lock()
    local = threading.local()

    def client():
        while True:
            with qlock:
                if not queue:
                    break
                fn, person = queue.pop()
                b = browsers.setdefault(person.login, Browser(port, stats, local))
            try:
                fn(b, person)
            except StepFailed:
                pass
        if getattr(local, "conn", None) is not None:
            local.conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return time.perf_counter() - t0, stats


def warm_jobs(people: list[Person], times: int) -> list[tuple]:
    """Signed-in GETs of every page kind (cookies from the seed) and the sign-in forms: nothing measured."""
    jobs = []
    for p in people:
        if not p.warm_cookie:
            continue
        if p.kind == "lead":
            jobs.append(("/staff/cases/", None, p.warm_cookie, "GET"))
        elif p.kind == "teacher":
            jobs += [(u, None, p.warm_cookie, "GET") for u in
                     ("/staff/", f"/staff/checkins?class_id={p.class_id}", "/staff/screening/")]
        elif p.kind == "student":
            jobs += [(u, None, p.warm_cookie, "GET") for u in ("/student/", f"/student/checkins/{p.assignment_id}")]
        else:
            jobs.append(("/family/", None, p.warm_cookie, "GET"))
    jobs += [(u, None, "", "GET") for u in ("/student/signin", "/family/signin", "/staff/signin")]
    return jobs * times


def counts_of(steps: list[tuple]) -> tuple[int, int]:
    """GETs and POSTs the morning sends (for the bare app's equal share)."""
    per = {student_morning: (3, 2), guardian_morning: (2, 1), staff_sign_in: (2, 2)}
    gets = posts = 0
    for fn, p in steps:
        g, q = per.get(fn) or ((1, 0) if p.kind == "lead" else (3, 0))
        gets, posts = gets + g, posts + q
    return gets, posts


def run_morning(label: str, args, sequencing: str, with_bare: bool) -> dict:
    """Seed a fresh database, serve the application with ``sequencing`` (and the bare app), play the morning."""
    rng = random.Random(args.seed)
    name, url = create_database()
    env = app_env(url, LOGIN_RATE_LIMIT="100000 per minute", MIMAMORI_PASSWORD_HASH=args.password_hash,
                  MIMAMORI_AUDIT_SEQUENCING=sequencing)
    procs = []
    out: dict = {"label": label}
    try:
        t = time.perf_counter()
        people = seed(url, env, args.classes, args.guardian_share, args.case_share, rng)
        print(f"[{label}] seeded {args.classes * PER_CLASS} children, {sum(p.kind == 'guardian' for p in people)} "
              f"visiting guardians, {sum(p.kind in ('teacher', 'lead') for p in people)} staff in "
              f"{time.perf_counter() - t:.1f}s (MIMAMORI_AUDIT_SEQUENCING={sequencing})", flush=True)
        app_proc, app_port = serve("portal:create_app()", env, args.workers, args.threads)
        procs.append(app_proc)
        steps = plan(people, args.refreshes, rng)
        if with_bare:
            bare_proc, bare_port = serve("bench._serve:make_bare_app()", env, args.workers, args.threads)
            procs.append(bare_proc)
            gets, posts = counts_of(steps)
            bare_jobs = [(f"/read/{i}", None, "", "GET") for i in range(gets)] + [
                (f"/insert/{i}", dict(MOOD), "", "POST") for i in range(posts)]
            rng.shuffle(bare_jobs)
            drive(bare_port, bare_jobs[: args.clients * 4], args.clients)
        drive(app_port, warm_jobs(people, 3), args.clients)
        out["load_before"] = load_average()
        if with_bare:
            cpu0 = server_cpu_seconds(bare_proc)
            out["secs_bare"], out["lat_bare"], out["err_bare"] = drive(bare_port, bare_jobs, args.clients)
            out["cpu_bare"] = server_cpu_seconds(bare_proc) - cpu0
        cpu0 = server_cpu_seconds(app_proc)
        out["secs_app"], out["stats"] = play(app_port, steps, args.clients)
        out["cpu_app"] = server_cpu_seconds(app_proc) - cpu0
    finally:
        stop(procs)
        drop_database(name)
    return out


def report(run: dict) -> dict:
    """Print a morning's table; its figures."""
    stats, label = run["stats"], run["label"]
    for line in stats.first_errors:
        print(f"[{label}] first errors: {line}", flush=True)
    every = [x for kind in KINDS for x in stats.latencies[kind]]
    n_app = len(every)
    errors = sum(stats.errors.values())
    print(f"[{label}] {'kind':<18}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>7}")
    figures = {}
    for kind in KINDS:
        lat = stats.latencies[kind]
        if not lat:
            continue
        p50, p95_, p99 = (percentile(lat, q) * 1000 for q in (50, 95, 99))
        figures[kind] = (p95_, p99)
        print(f"[{label}] {kind:<18}{len(lat):>9}{p50:>9.1f}{p95_:>9.1f}{p99:>9.1f}{stats.errors[kind]:>7}")
    tp = n_app / run["secs_app"]
    p95, p99 = percentile(every, 95) * 1000, percentile(every, 99) * 1000
    cpu_req = run["cpu_app"] * 1000 / max(1, n_app)
    print(f"[{label}] morning (all kinds): {n_app} in {run['secs_app']:.2f}s  {tp:.1f}/s  p95 {p95:.1f} ms  "
          f"p99 {p99:.1f} ms  errors {errors}  server CPU {run['cpu_app']:.1f}s ({cpu_req:.1f} ms a request)")
    return {"rps": tp, "p95": p95, "p99": p99, "cpu_req": cpu_req, "n": n_app, "errors": errors, "figures": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=2, help="classes of 40 children, one homeroom teacher each")
    parser.add_argument("--guardian-share", type=float, default=0.25, help="share of guardians who sign in this morning")
    parser.add_argument("--case-share", type=float, default=0.5, help="share of children with a case in the register")
    parser.add_argument("--refreshes", type=int, default=10, help="times each teacher (and the lead) opens their pages")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--password-hash", choices=("owasp", "rfc9106"), default="owasp",
                        help="the argon2 parameter set (MIMAMORI_PASSWORD_HASH) of the seed and the servers")
    parser.add_argument("--audit-lock", action="store_true",
                        help="also play the same morning with the audit chain's lock held from a page's first audit "
                             "write to its commit (MIMAMORI_AUDIT_SEQUENCING=inline, the old way), and compare")
    args = parser.parse_args()

    run = run_morning("deferred", args, "deferred", with_bare=True)
    app = report(run)
    tp_bare, lat_bare, err_bare = len(run["lat_bare"]) / run["secs_bare"], run["lat_bare"], run["err_bare"]
    bare95, bare99 = percentile(lat_bare, 95) * 1000, percentile(lat_bare, 99) * 1000
    cpu_req_bare = run["cpu_bare"] * 1000 / max(1, len(lat_bare))
    print(f"bare Flask:          {len(lat_bare)} in {run['secs_bare']:.2f}s  {tp_bare:.1f}/s  p95 {bare95:.1f} ms  "
          f"p99 {bare99:.1f} ms  errors {err_bare}  server CPU {run['cpu_bare']:.1f}s ({cpu_req_bare:.1f} ms a request)")
    print(f"ratio (morning / bare): throughput {app['rps'] / tp_bare:.3f}, p95 {app['p95'] / bare95:.2f}x, "
          f"p99 {app['p99'] / bare99:.2f}x")
    print(f"load average (1/5/15 min) before the measured runs {run['load_before']}, after {load_average()}")
    audit_pairs = ""
    errors = app["errors"] + err_bare
    if args.audit_lock:
        locked = report(run_morning("inline", args, "inline", with_bare=False))
        errors += locked["errors"]
        print(f"audit sequencing: deferred {app['rps']:.1f}/s p95 {app['p95']:.1f} ms, inline (chain lock to commit) "
              f"{locked['rps']:.1f}/s p95 {locked['p95']:.1f} ms: deferred / inline throughput "
              f"{app['rps'] / locked['rps']:.3f}, p95 {app['p95'] / locked['p95']:.3f}")
        audit_pairs = (
            f"audit_deferred_rps={app['rps']:.1f} audit_inline_rps={locked['rps']:.1f} "
            f"audit_deferred_p95_ms={app['p95']:.1f} audit_inline_p95_ms={locked['p95']:.1f} "
            f"audit_deferred_p99_ms={app['p99']:.1f} audit_inline_p99_ms={locked['p99']:.1f} "
            f"audit_inline_cpu_ms_per_request={locked['cpu_req']:.1f} "
            f"audit_throughput_ratio_deferred_over_inline={app['rps'] / locked['rps']:.3f} "
            f"audit_p95_ratio_deferred_over_inline={app['p95'] / locked['p95']:.3f} "
        )
    per_kind = " ".join(f"{k}_p95_ms={v[0]:.1f} {k}_p99_ms={v[1]:.1f}" for k, v in app["figures"].items())
    print(
        f"morning_rps={app['rps']:.1f} morning_p95_ms={app['p95']:.1f} morning_p99_ms={app['p99']:.1f} "
        f"bare_rps={tp_bare:.1f} bare_p95_ms={bare95:.1f} bare_p99_ms={bare99:.1f} "
        f"throughput_ratio={app['rps'] / tp_bare:.3f} p95_ratio={app['p95'] / bare95:.3f} "
        f"p99_ratio={app['p99'] / bare99:.3f} "
        f"server_cpu_ms_per_request={app['cpu_req']:.1f} bare_server_cpu_ms_per_request={cpu_req_bare:.1f} "
        f"{per_kind} requests={app['n']} errors={errors} children={args.classes * PER_CLASS} "
        f"clients={args.clients} workers={args.workers} threads={args.threads} password_hash={args.password_hash} "
        f"{audit_pairs}load1={os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
