"""Real processes of the application for the fault tests (same database, same instance)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))
started: list[subprocess.Popen] = []  # killed after each test if still running (conftest)


def env_for(app) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = app.config["SQLALCHEMY_DATABASE_URI"]
    env["MIMAMORI_ENCRYPTION_KEY"] = app.config["MIMAMORI_ENCRYPTION_KEY"]
    env["SECRET_KEY"] = app.config["SECRET_KEY"]
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(app, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``flask --app portal ARGS`` to completion."""
    return subprocess.run([FLASK, "--app", "portal", *args], cwd=ROOT, env=env_for(app), capture_output=True,
                          text=True, timeout=timeout)


def start(app, *args: str, pause_on: str | None = None, after: int = 1, sets: tuple[str, ...] = ()) -> subprocess.Popen:
    """``flask --app portal ARGS`` in the background, optionally pausing at a statement (see faultrun)."""
    hook = [sys.executable, "-m", "tests.reliability.faultrun"]
    if pause_on:
        hook += ["--pause-on", pause_on, "--after", str(after)]
    for s in sets:
        hook += ["--set", s]
    proc = subprocess.Popen([*hook, "--", "--app", "portal", *args], cwd=ROOT, env=env_for(app),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started.append(proc)
    return proc


def wait_for_line(proc: subprocess.Popen, text: str) -> list[str]:
    """Read the process's output until a line containing ``text`` (fails if it exits first)."""
    seen = []
    for line in proc.stdout:
        seen.append(line.rstrip("\n"))
        if text in line:
            return seen
    proc.wait()
    raise AssertionError(f"process exited ({proc.returncode}) before printing {text!r}:\n" + "\n".join(seen[-40:]))


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL, as a crash would; reaped, so its pid is gone."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stdout.close()


def stop(proc: subprocess.Popen) -> str:
    """SIGTERM (a clean stop); returns the rest of its output."""
    proc.send_signal(signal.SIGTERM)
    rest = proc.stdout.read()
    proc.wait(timeout=60)
    proc.stdout.close()
    return rest
