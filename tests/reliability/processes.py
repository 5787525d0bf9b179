"""Real processes of the application for the fault tests (same database, same instance).

Every wait has a deadline: a process that never prints what the test waits
for, or never exits, fails the test with the output it did print, instead of
blocking the run.
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))
DEADLINE = 120.0  # seconds for a line to appear or a process to exit
started: list[subprocess.Popen] = []  # killed after each test if still running (conftest)
_EOF = object()
_names = itertools.count(1)


def env_for(app, name: str = "mimamori-fault-test") -> dict[str, str]:
    env = dict(os.environ)
    env["PGAPPNAME"] = name  # its PostgreSQL sessions, found by name (see kill)
    env["DATABASE_URL"] = app.config["SQLALCHEMY_DATABASE_URI"]
    env["MIMAMORI_ENCRYPTION_KEY"] = app.config["MIMAMORI_ENCRYPTION_KEY"]
    env["MIMAMORI_BACKUP_KEY"] = app.config["MIMAMORI_BACKUP_KEY"]
    env["SECRET_KEY"] = app.config["SECRET_KEY"]
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(app, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``flask --app portal ARGS`` to completion."""
    return subprocess.run([FLASK, "--app", "portal", *args], cwd=ROOT, env=env_for(app), capture_output=True,
                          text=True, timeout=timeout)


def _pump(proc: subprocess.Popen, lines: queue.Queue) -> None:
    with proc.stdout:
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
    lines.put(_EOF)


def start(app, *args: str, pause_on: str | None = None, after: int = 1, sets: tuple[str, ...] = ()) -> subprocess.Popen:
    """``flask --app portal ARGS`` in the background, optionally pausing at a statement (see faultrun)."""
    hook = [sys.executable, "-m", "tests.reliability.faultrun"]
    if pause_on:
        hook += ["--pause-on", pause_on, "--after", str(after)]
    for s in sets:
        hook += ["--set", s]
    name = f"mimamori-fault-{os.getpid()}-{next(_names)}"
    proc = subprocess.Popen([*hook, "--", "--app", "portal", *args], cwd=ROOT, env=env_for(app, name),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc.app_name, proc.database_url = name, app.config["SQLALCHEMY_DATABASE_URI"]
    proc.lines = queue.Queue()  # its output, line by line, read by a thread of its own
    proc.seen = []
    proc.pump = threading.Thread(target=_pump, args=(proc, proc.lines), daemon=True)
    proc.pump.start()
    started.append(proc)
    return proc


def _next_line(proc: subprocess.Popen, timeout: float):
    try:
        line = proc.lines.get(timeout=timeout)
    except queue.Empty:
        return None
    if line is not _EOF:
        proc.seen.append(line)
    return line


def _tail(proc: subprocess.Popen) -> str:
    return "\n".join(proc.seen[-40:])


def wait_for_line(proc: subprocess.Popen, text: str, timeout: float = DEADLINE) -> list[str]:
    """The process's output up to a line containing ``text``; fails if it exits
    first or prints nothing of the kind within ``timeout`` seconds."""
    start_at = len(proc.seen)
    while True:
        line = _next_line(proc, timeout)
        if line is None:
            raise AssertionError(f"no line with {text!r} within {timeout:.0f} s; the process printed:\n{_tail(proc)}")
        if line is _EOF:
            proc.wait(timeout=timeout)
            raise AssertionError(f"process exited ({proc.returncode}) before printing {text!r}:\n{_tail(proc)}")
        if text in line:
            return proc.seen[start_at:]


def _rest(proc: subprocess.Popen, timeout: float) -> str:
    start_at = len(proc.seen)
    while (line := _next_line(proc, timeout)) is not _EOF:
        if line is None:
            raise AssertionError(f"process did not exit within {timeout:.0f} s; it printed:\n{_tail(proc)}")
    proc.wait(timeout=timeout)
    proc.pump.join(timeout=timeout)
    return "\n".join(proc.seen[start_at:])


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL, as a crash would; reaped, so its pid is gone, and (PostgreSQL)
    its server sessions ended, so what it held (row locks, advisory locks, an
    open transaction) is released before the test goes on."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=DEADLINE)
    _rest(proc, DEADLINE)
    _wait_for_sessions_to_end(proc)


def _wait_for_sessions_to_end(proc: subprocess.Popen) -> None:
    """A killed client's server session ends when the server reads the closed
    socket: a moment later, not at once. Wait for it (``pg_terminate_backend``
    with a timeout waits for the session to be gone), so the next step sees
    the locks the dead process held released, as it would a moment later."""
    url = sa.make_url(proc.database_url)
    if not url.drivername.startswith("postgresql"):
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            ended = conn.execute(
                sa.text("SELECT pid, pg_terminate_backend(pid, :ms) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": proc.app_name, "ms": int(DEADLINE * 1000)},
            ).all()
        assert all(ok for _pid, ok in ended), f"the killed process's database sessions did not end: {ended}"
    finally:
        engine.dispose()


def reap(proc: subprocess.Popen) -> None:
    """After a test: kill the process if it still runs, and close its output."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=DEADLINE)
    proc.pump.join(timeout=DEADLINE)


def stop(proc: subprocess.Popen) -> str:
    """SIGTERM (a clean stop); returns the rest of its output."""
    proc.send_signal(signal.SIGTERM)
    return _rest(proc, DEADLINE)
