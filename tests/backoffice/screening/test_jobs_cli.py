"""The nightly job (APScheduler, through portal.scheduler) and the on-demand command line."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select

from backoffice.screening import model as ml
from backoffice.screening import service
from backoffice.screening.models import Flag, ScreeningModel, ScreeningRun
from portal.auth.principal import SYSTEM


def _active(session, make, as_principal, source="absence_recent [2]: absence_rate_3m >= 10%"):
    a, b = make.staff("data_steward"), make.staff("data_steward")
    rs = service.draft_rule_set(session, as_principal(a), "", source)
    service.submit_rule_set(session, as_principal(a), rs.id)
    service.approve_rule_set(session, as_principal(b), rs.id)
    return rs


def _absent_child(make, consented, records):
    _, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    for m in (5, 6, 7):
        records.attendance(child, date(2026, m, 1), absent=4)
    return child


def test_nightly_job_is_a_cron_job_of_the_scheduler():
    from portal.scheduler import registered_jobs

    spec = registered_jobs()["screening.nightly"]
    assert spec.func_path == "backoffice.screening.jobs:nightly"
    assert spec.trigger_kwargs["trigger"] == "cron"


def test_nightly_job_flags_the_child_as_of_the_tokyo_date(app, session, make, consented, records, as_principal):
    from portal.scheduler import run_job

    child = _absent_child(make, consented, records)
    _active(session, make, as_principal)
    session.commit()
    # 16:00 UTC on 14 July is already 15 July in Tokyo
    assert run_job("screening.nightly", datetime(2026, 7, 14, 16, 0, tzinfo=UTC), app=app)
    session.expire_all()
    assert session.scalar(select(Flag.child_id)) == child.id
    assert session.scalar(select(ScreeningRun.trigger)) == "nightly"
    # the next night: the same facts, no second flag
    assert run_job("screening.nightly", datetime(2026, 7, 15, 16, 0, tzinfo=UTC), app=app)
    session.expire_all()
    assert session.scalar(select(func.count(Flag.id))) == 1


def test_nightly_job_without_an_active_rule_set_does_nothing(app, session, make, consented, records):
    from portal.scheduler import run_job

    _absent_child(make, consented, records)
    session.commit()
    assert run_job("screening.nightly", datetime(2026, 7, 14, 16, 0, tzinfo=UTC), app=app)
    assert session.scalar(select(func.count(ScreeningRun.id))) == 0


def test_cli_run_on_demand(app, session, make, consented, records, as_principal):
    _absent_child(make, consented, records)
    session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["screening", "run", "--as-of", "2026-07-15"])
    assert result.exit_code == 1 and "no active rule set" in result.output.lower() + result.stderr.lower()
    _active(session, make, as_principal)
    session.commit()
    result = runner.invoke(args=["screening", "run", "--as-of", "2026-07-15"])
    assert result.exit_code == 0, result.output
    assert "new_flags: 1" in result.output


def test_cli_train_refuses_too_few_decisions_and_trains_on_enough(app, session, make, consented, records, as_principal):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["screening", "train"])
    assert result.exit_code == 1 and "Too few teacher decisions" in result.stderr
    assert session.scalar(select(func.count(ScreeningModel.id))) == 0
    m = ml.train(session, SYSTEM, ml.synthetic_decisions(300, seed=1))
    assert m.id and not m.enabled  # trained, but off until a steward switches it on
