"""What the load benchmarks share: a throwaway PostgreSQL database, gunicorn, a bare app, drivers.

Used by ``bench/checkin_load.py`` and ``bench/morning.py``. Not a benchmark
itself (no ``main``). Localhost only.
"""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql+psycopg://postgres@localhost/postgres")


# -- the bare comparison app ---------------------------------------------------------


def make_bare_app():
    """Flask + Flask-SQLAlchemy without the product: the floor any Flask app on this machine can reach.

    ``POST /insert/<n>`` inserts one row and redirects to ``/done``;
    ``GET /read/<n>`` selects one row and renders a small template.
    """
    from flask import Flask, render_template_string, request
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy import JSON, Column, Integer, MetaData, Table, insert, select, text

    db = SQLAlchemy()
    rows = Table(
        "bench_bare_insert",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("child_id", Integer),
        Column("answers", JSON),
    )

    app = Flask("bare")
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    db.init_app(app)
    with app.app_context(), db.engine.begin() as conn:
        # Every worker runs this at boot: one at a time, or two race to CREATE the same table.
        conn.execute(text("SELECT pg_advisory_xact_lock(7240099)"))
        rows.create(conn, checkfirst=True)

    @app.post("/insert/<int:child_id>")
    def insert_row(child_id: int):
        db.session.execute(insert(rows).values(child_id=child_id, answers=dict(request.form)))
        db.session.commit()
        return "", 302, {"Location": "/done"}

    @app.get("/read/<int:child_id>")
    def read_row(child_id: int):
        row = db.session.execute(select(rows).where(rows.c.child_id == child_id).limit(1)).first()
        return render_template_string("<!doctype html><title>{{ n }}</title><p>{{ row }}</p>", n=child_id, row=row)

    @app.get("/healthz")
    def healthz():
        return "ok"

    return app


# -- the database and the environment -------------------------------------------------


def create_database() -> tuple[str, str]:
    """A fresh database on the local PostgreSQL; returns (name, SQLAlchemy URL)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"mimamori_bench_{os.getpid()}_{secrets.token_hex(3)}"
    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name, make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(name: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def app_env(url: str, **extra: str) -> dict:
    """The environment both gunicorn servers run with (development mode, fresh keys, a temporary instance)."""
    from cryptography.fernet import Fernet

    return {
        "MIMAMORI_ENV": "development",
        "MIMAMORI_INSTANCE": tempfile.mkdtemp(prefix="mimamori-bench-"),
        "SECRET_KEY": secrets.token_hex(32),
        "MIMAMORI_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DATABASE_URL": url.replace("postgresql+psycopg://", "postgresql://", 1),
        "MAIL_BACKEND": "file",
        **extra,
    }


# -- serving ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(target: str, env: dict, workers: int, threads: int) -> tuple[subprocess.Popen, int]:
    """Start gunicorn (gthread workers) on a free localhost port; wait for ``/healthz``."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "gthread", "--threads", str(threads),
         "-b", f"127.0.0.1:{port}", "--log-level", "warning", target],
        cwd=str(ROOT), env={**os.environ, **env},
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"{target} did not start")


def server_cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU (user + system) used so far by a gunicorn master and its live workers, from /proc.

    On a shared machine wall-clock latency mostly measures waiting for a
    core; the CPU a request costs the server is the steadier figure.
    """
    tick = os.sysconf("SC_CLK_TCK")

    def cpu(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    try:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except OSError:
        children = []
    return cpu(proc.pid) + sum(cpu(int(c)) for c in children)


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


# -- driving -----------------------------------------------------------------------------


def drive(port: int, jobs: list[tuple], clients: int, method: str = "POST") -> tuple[float, list[float], int]:
    """Send every (path, form, cookie[, method]) from ``clients`` threads; (seconds, latencies, errors).

    A POST succeeds when it redirects to a ``/done`` page; a GET when it is 200.
    A job's own fourth element, when there, overrides ``method``.
    """
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    chunks = [jobs[i::clients] for i in range(clients)]
    first_error: list[str] = []

    def worker(chunk):
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for job in chunk:
            path, form, cookie = job[:3]
            verb = job[3] if len(job) > 3 else method
            body = urllib.parse.urlencode(form) if form is not None else None
            headers = {"Cookie": cookie}
            if body is not None:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            t = time.perf_counter()
            try:
                conn.request(verb, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if verb == "GET":
                    ok = resp.status == 200
                else:
                    ok = resp.status == 302 and "/done" in (resp.getheader("Location") or "")
                if not ok and not first_error:
                    first_error.append(f"{resp.status} {resp.getheader('Location')}")
            except OSError as exc:
                if not first_error:
                    first_error.append(type(exc).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = False
            dt = time.perf_counter() - t
            with lock:
                latencies.append(dt)
                errors += 0 if ok else 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if first_error:
        print(f"first error on port {port}: {first_error[0]}", flush=True)
    return time.perf_counter() - t0, latencies, errors


def percentile(values: list[float], pct: int) -> float:
    """The ``pct``-th percentile (statistics.quantiles, exclusive method); the maximum for short lists."""
    if len(values) < 2:
        return max(values) if values else 0.0
    return statistics.quantiles(values, n=100)[pct - 1] if len(values) >= 100 // (100 - pct) else max(values)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) >= 20 else max(values)


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, for the report (the machine is shared)."""
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"
