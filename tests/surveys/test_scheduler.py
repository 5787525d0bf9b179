"""The kernel scheduler: registry, locks, job store persistence, the job runner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal import scheduler
from portal.orm import utcnow

T0 = datetime(2026, 6, 8, 0, 0, tzinfo=UTC)


def test_surveys_registers_its_jobs():
    jobs = scheduler.registered_jobs()
    assert jobs["surveys.tick"].func_path == "surveys.jobs:tick"
    assert jobs["surveys.escalate"].trigger_kwargs["trigger"] == "interval"


def test_register_job_refuses_bad_paths():
    with pytest.raises(ValueError):
        scheduler.register_job("x", "no_colon", {"trigger": "interval", "minutes": 1})
    with pytest.raises(ValueError):
        scheduler.register_job("x", "a.b:c", {"minutes": 1})


def test_lock_is_held_by_one_holder_until_it_expires(session):
    assert scheduler.acquire_lock(session, "scheduler:leader", "a", timedelta(seconds=90), T0)
    assert not scheduler.acquire_lock(session, "scheduler:leader", "b", timedelta(seconds=90), T0 + timedelta(seconds=30))
    assert scheduler.acquire_lock(session, "scheduler:leader", "a", timedelta(seconds=90), T0 + timedelta(seconds=30))  # renew
    assert scheduler.acquire_lock(session, "scheduler:leader", "b", timedelta(seconds=90), T0 + timedelta(seconds=200))  # expired


def test_run_job_passes_session_and_clock_and_commits(app, session, sv, make):
    from sqlalchemy import func, select

    from surveys.models import SurveyAssignment

    _t, cls = make.teacher_with_class(grade=2)
    sv.consented_child(cls)
    sv.schedule(cls, "mood")
    session.commit()
    monday_0805 = datetime(2026, 6, 7, 23, 5, tzinfo=UTC)
    assert scheduler.run_job("surveys.tick", monday_0805, app=app)
    assert session.scalar(select(func.count()).select_from(SurveyAssignment)) == 1
    assert scheduler.run_job("surveys.tick", monday_0805, app=app)  # idempotent: nothing repeated
    assert session.scalar(select(func.count()).select_from(SurveyAssignment)) == 1


def test_job_store_keeps_jobs_and_next_run_across_a_restart(app, tmp_path):
    """Two scheduler instances on the same store: the second keeps the first's next run time."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"

    def make():
        s = BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)}, timezone="Asia/Tokyo")
        s.start(paused=True)
        return s

    first = make()
    assert set(scheduler.sync_jobs(first)) >= {"surveys.tick", "surveys.escalate"}
    next_run = first.get_job("surveys.tick").next_run_time
    first.shutdown(wait=False)
    second = make()
    assert scheduler.sync_jobs(second) == []  # nothing added again, nothing lost
    assert second.get_job("surveys.tick").next_run_time == next_run
    second.shutdown(wait=False)


def test_web_app_does_not_start_a_scheduler(app):
    assert "apscheduler" not in app.extensions
    assert utcnow().tzinfo is not None
