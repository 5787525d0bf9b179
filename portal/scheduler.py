"""The background scheduler: APScheduler 3 in its own process, jobs in the database.

Domains register their jobs from their ``init_app``::

    from portal.scheduler import register_job
    register_job("surveys.tick", "surveys.jobs:tick", {"trigger": "interval", "minutes": 5})

A job function takes ``(session, now)``: the session to work in and the
clock (a timezone-aware UTC datetime), so tests call it with any time. The
runner commits once after the function returns, or rolls back.

``flask --app portal scheduler run`` starts the scheduler (never the web
application). Jobs live in APScheduler's SQLAlchemyJobStore on the
application database, so a restart neither loses them nor runs them twice:
existing jobs keep their next run time, and a run missed while the process
was down is run once (``coalesce``). Two scheduler processes never both run
a job: each process must hold the leader lock (a row in ``scheduler_lock``,
taken with a conditional UPDATE that works the same on PostgreSQL and
SQLite, renewed by a heartbeat), and every job run also takes a per-job lock
(PostgreSQL: ``pg_try_advisory_xact_lock``; SQLite: the same lock row kind).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import socket
import time as _time
from dataclasses import dataclass
from datetime import datetime, timedelta

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import String, insert, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from portal.orm import Base, UTCDateTime, utcnow

log = logging.getLogger(__name__)

JOBSTORE_TABLE = "apscheduler_jobs"
LEADER_LOCK = "scheduler:leader"
LEADER_TTL = timedelta(seconds=90)
JOB_LOCK_TTL = timedelta(minutes=30)


class SchedulerLock(Base):
    """A named lock with a holder and an expiry (leader election, job runs)."""

    __tablename__ = "scheduler_lock"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class JobSpec:
    id: str
    func_path: str  # "package.module:function"
    trigger_kwargs: dict


_registry: dict[str, JobSpec] = {}


def register_job(job_id: str, func_path: str, trigger_kwargs: dict) -> None:
    """Declare a job (idempotent; the last declaration of an id wins)."""
    if ":" not in func_path:
        raise ValueError("func_path must look like 'package.module:function'")
    if "trigger" not in trigger_kwargs:
        raise ValueError("trigger_kwargs needs a 'trigger' ('interval', 'cron' or 'date')")
    _registry[job_id] = JobSpec(job_id, func_path, dict(trigger_kwargs))


def registered_jobs() -> dict[str, JobSpec]:
    return dict(_registry)


def resolve(func_path: str):
    module, _, name = func_path.partition(":")
    return getattr(importlib.import_module(module), name)


# -- locks ----------------------------------------------------------------------


def acquire_lock(session: Session, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
    """Take or renew a named lock; False if someone else holds it and it has not expired.

    The conditional UPDATE is atomic on both backends; a missing row is
    created, and a concurrent creator loses on the primary key.
    """
    expires = now + ttl
    res = session.execute(
        update(SchedulerLock)
        .where(
            SchedulerLock.name == name,
            (SchedulerLock.holder == holder) | (SchedulerLock.expires_at < now),
        )
        .values(holder=holder, expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount:
        return True
    try:
        with session.begin_nested():
            session.execute(insert(SchedulerLock).values(name=name, holder=holder, expires_at=expires))
        return True
    except IntegrityError:
        return False


def release_lock(session: Session, name: str, holder: str) -> None:
    session.execute(
        update(SchedulerLock)
        .where(SchedulerLock.name == name, SchedulerLock.holder == holder)
        .values(expires_at=utcnow() - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )


def _advisory_key(job_id: str) -> int:
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:8], "big", signed=True)


def _holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:100]


# -- running a job ---------------------------------------------------------------


def run_job(job_id: str, now: datetime | None = None, *, app: Flask | None = None) -> bool:
    """Run one registered job once, under its lock; True if it ran.

    Called by APScheduler in the scheduler process and directly by tests and
    ``flask scheduler run-once``.
    """
    from portal.extensions import db

    app = app or _app
    if app is None:
        raise RuntimeError("run_job needs the application")
    spec = _registry[job_id]
    func = resolve(spec.func_path)
    with app.app_context():
        session = db.session
        now = now or utcnow()
        holder = _holder()
        try:
            if session.get_bind().dialect.name == "postgresql":
                got = session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _advisory_key(job_id)})
            else:
                got = acquire_lock(session, f"job:{job_id}", holder, JOB_LOCK_TTL, now)
                session.commit()  # make the lock visible to other processes
            if not got:
                log.info("job %s skipped: another process is running it", job_id)
                return False
            func(session, now)
            if session.get_bind().dialect.name != "postgresql":
                release_lock(session, f"job:{job_id}", holder)
            session.commit()
            return True
        except Exception:
            session.rollback()
            log.exception("job %s failed", job_id)
            raise
        finally:
            session.remove()


_app: Flask | None = None


def _job_entry(job_id: str) -> None:
    """What APScheduler stores and calls (a module-level function, picklable by reference)."""
    try:
        run_job(job_id)
    except Exception:  # noqa: S110 (logged in run_job; keep the scheduler alive)
        pass


# -- the scheduler process --------------------------------------------------------


def build_scheduler(app: Flask):
    """An APScheduler 3 background scheduler with its job store on the application database.

    It is created only by ``flask scheduler run`` (and tests), never by the web application.
    """
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    global _app
    _app = app
    return BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=app.config["SQLALCHEMY_DATABASE_URI"], tablename=JOBSTORE_TABLE)},
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone="Asia/Tokyo",
    )


def sync_jobs(scheduler) -> list[str]:
    """Add registered jobs missing from the store; keep existing ones (and their next run).

    A job whose trigger changed in the code is rescheduled; jobs no longer
    registered are removed. Returns the ids added or rescheduled.
    """
    changed: list[str] = []
    stored = {job.id: job for job in scheduler.get_jobs()}
    for spec in _registry.values():
        kwargs = dict(spec.trigger_kwargs)
        trigger = kwargs.pop("trigger")
        job = stored.get(spec.id)
        if job is None:
            scheduler.add_job(_job_entry, trigger, id=spec.id, args=[spec.id], name=spec.id, **kwargs)
            changed.append(spec.id)
            continue
        fresh = scheduler._create_trigger(trigger, dict(kwargs))
        if str(fresh) != str(job.trigger):
            scheduler.reschedule_job(spec.id, trigger=trigger, **kwargs)
            changed.append(spec.id)
    for job_id in set(stored) - set(_registry):
        scheduler.remove_job(job_id)
    return changed


def _become_leader(app: Flask, holder: str, wait: bool) -> bool:
    from portal.extensions import db

    while True:
        with app.app_context():
            got = acquire_lock(db.session, LEADER_LOCK, holder, LEADER_TTL, utcnow())
            db.session.commit()
            db.session.remove()
        if got or not wait:
            return got
        log.info("another scheduler holds the lock; waiting")
        _time.sleep(LEADER_TTL.total_seconds() / 3)


def _heartbeat(app: Flask, holder: str, scheduler) -> None:
    from portal.extensions import db

    with app.app_context():
        ok = acquire_lock(db.session, LEADER_LOCK, holder, LEADER_TTL, utcnow())
        db.session.commit()
        db.session.remove()
    if not ok:  # another process took over (we stalled past the TTL): stop at once
        log.error("scheduler lost its lock; stopping")
        scheduler.shutdown(wait=False)


@click.group("scheduler", help="The background scheduler (its own process).")
def scheduler_group():
    pass


@scheduler_group.command("run")
@click.option("--no-wait", is_flag=True, help="Exit if another scheduler holds the lock.")
@with_appcontext
def scheduler_run(no_wait: bool):
    """Run the scheduler in the foreground until stopped (SIGTERM or Ctrl-C)."""
    import signal
    import threading

    from apscheduler.jobstores.memory import MemoryJobStore

    from portal.extensions import db

    app = current_app._get_current_object()
    holder = _holder()
    if not _become_leader(app, holder, wait=not no_wait):
        click.echo("another scheduler process holds the lock")
        raise SystemExit(1)
    sched = build_scheduler(app)
    sched.add_jobstore(MemoryJobStore(), "memory")
    sched.start(paused=True)
    changed = sync_jobs(sched)
    sched.add_job(
        _heartbeat, "interval", seconds=int(LEADER_TTL.total_seconds() / 3), args=[app, holder, sched],
        id="scheduler.heartbeat", jobstore="memory",
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo(f"scheduler started: {len(registered_jobs())} jobs ({', '.join(changed) or 'none'} added or changed)")
    sched.resume()
    try:
        while sched.running and not stop.wait(1):
            pass
    finally:
        if sched.running:
            sched.shutdown()
        with app.app_context():
            release_lock(db.session, LEADER_LOCK, holder)
            db.session.commit()
        click.echo("scheduler stopped")


@scheduler_group.command("jobs")
def scheduler_jobs():
    """List the registered jobs."""
    for spec in registered_jobs().values():
        click.echo(f"{spec.id:<32} {spec.func_path:<40} {spec.trigger_kwargs}")


@scheduler_group.command("run-once")
@click.argument("job_id")
def scheduler_run_once(job_id: str):
    """Run one job now, under its lock (operations and debugging)."""
    if job_id not in _registry:
        raise click.BadParameter(f"unknown job {job_id!r}")
    ran = run_job(job_id, app=current_app._get_current_object())
    click.echo("done" if ran else "skipped: another process is running it")


def register_cli(app: Flask) -> None:
    app.cli.add_command(scheduler_group)
