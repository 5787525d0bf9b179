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

A job run is one transaction, so a run killed half-way leaves nothing of
its work behind. It also leaves its mark: before the work starts, the
``job:<id>`` row of ``scheduler_lock`` is committed as held, and the work's
own commit releases it. A scheduler starting up runs once, at once, every
job whose row is still held by a process that is gone (the same host and a
dead pid, or an expired lock), so an interrupted run is neither lost nor, as
its work was rolled back, repeated. The leader lock of a dead process on the
same host is taken over at once, so a restart after a crash does not wait
for the lock to expire.
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
from sqlalchemy.exc import IntegrityError, OperationalError
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


def holder_is_gone(holder: str) -> bool:
    """True if ``holder`` ("host:pid") is a process of this host that no longer runs."""
    pid = holder.rpartition(":")[2]
    if not pid.isdigit() or holder != f"{socket.gethostname()}:{pid}"[:100]:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def take_lock(session: Session, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
    """:func:`acquire_lock`, or take it over from a holder that is gone (crashed on this host)."""
    if acquire_lock(session, name, holder, ttl, now):
        return True
    row = session.get(SchedulerLock, name, populate_existing=True)
    if row is None or not holder_is_gone(row.holder):
        return False
    res = session.execute(
        update(SchedulerLock)
        .where(SchedulerLock.name == name, SchedulerLock.holder == row.holder)
        .values(holder=holder, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount:
        log.warning("lock %s taken over from a process that is gone", name)
    return bool(res.rowcount)


def _mark_running(engine, name: str, holder: str, now: datetime) -> None:
    """Commit, on a connection of its own, that ``holder`` runs the job (PostgreSQL)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    stmt = pg_insert(SchedulerLock).values(name=name, holder=holder, expires_at=now + JOB_LOCK_TTL)
    stmt = stmt.on_conflict_do_update(index_elements=[SchedulerLock.name],
                                      set_={"holder": holder, "expires_at": now + JOB_LOCK_TTL})
    with engine.begin() as conn:
        conn.execute(stmt)


def finish_job_lock(session: Session, name: str, holder: str) -> None:
    """Release a job's lock as finished (an empty holder): in the same commit as the job's work."""
    session.execute(
        update(SchedulerLock)
        .where(SchedulerLock.name == name, SchedulerLock.holder == holder)
        .values(holder="", expires_at=utcnow() - timedelta(seconds=1))
        .execution_options(synchronize_session=False)
    )


def interrupted_jobs(session: Session, now: datetime | None = None) -> list[str]:
    """Registered jobs whose last run started and never finished: the lock row
    is still held, by a process that is gone or past its expiry."""
    from sqlalchemy import select

    now = now or utcnow()
    rows = session.execute(
        select(SchedulerLock.name, SchedulerLock.holder, SchedulerLock.expires_at)
        .where(SchedulerLock.name.like("job:%"), SchedulerLock.holder != "")
    ).all()
    return sorted(
        name[len("job:"):] for name, holder, expires_at in rows
        if name[len("job:"):] in _registry and (expires_at <= now or holder_is_gone(holder))
    )


def _advisory_key(job_id: str) -> int:
    return int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:8], "big", signed=True)


def this_process() -> str:
    """This process as "host:pid", the form :func:`holder_is_gone` checks."""
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
        holder = this_process()
        name = f"job:{job_id}"
        pg = session.get_bind().dialect.name == "postgresql"
        try:
            if pg:
                got = session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _advisory_key(job_id)})
                if got:  # the mark that a run started, committed at once: it outlives a crash
                    _mark_running(db.engine, name, holder, utcnow())
            else:
                try:
                    got = take_lock(session, name, holder, JOB_LOCK_TTL, utcnow())
                    session.commit()  # make the lock visible to other processes
                except OperationalError as exc:  # SQLite: another process is writing (running a job)
                    if "locked" not in str(exc.orig):
                        raise
                    session.rollback()
                    got = False
            if not got:
                log.info("job %s skipped: another process is running it", job_id)
                return False
            func(session, now)
            finish_job_lock(session, name, holder)  # in the same commit as the work
            session.commit()
            return True
        except Exception:
            session.rollback()
            log.exception("job %s failed", job_id)
            try:  # a failed run is over (its next run retries); an interrupted one keeps its mark
                finish_job_lock(session, name, holder)
                session.commit()
            except Exception:  # noqa: S110 (the database itself failed; the lock expires)
                session.rollback()
            raise
        finally:
            session.remove()


def recover_interrupted(app: Flask) -> list[str]:
    """Run once, now, every job whose last run was interrupted (the scheduler's start-up)."""
    from portal.extensions import db

    with app.app_context():
        jobs = interrupted_jobs(db.session)
        db.session.remove()
    ran = []
    for job_id in jobs:
        log.warning("job %s was interrupted; running it again", job_id)
        try:
            if run_job(job_id, app=app):
                ran.append(job_id)
        except Exception:  # noqa: S110 (logged in run_job; the scheduler starts anyway)
            pass
    return ran


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
            got = take_lock(db.session, LEADER_LOCK, holder, LEADER_TTL, utcnow())
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
    holder = this_process()
    if not _become_leader(app, holder, wait=not no_wait):
        click.echo("another scheduler process holds the lock")
        raise SystemExit(1)
    for job_id in recover_interrupted(app):
        click.echo(f"interrupted job {job_id} run again")
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
