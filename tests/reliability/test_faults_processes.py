"""Faults in real processes: an import killed half-way, a scheduler killed
mid-job and restarted, two schedulers at once.

Each test starts ``flask --app portal …`` as its own process on the test
database (tests/reliability/processes.py); a hook (faultrun.py) pauses it
right after a chosen SQL statement, with its transaction open and half its
work written, and the test kills it there with SIGKILL.
"""

from __future__ import annotations

from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from backoffice.linkage.importer import service as importer
from backoffice.linkage.models import ImportBatch, LinkedRecord
from consent.testing import give_consent
from portal.audit.models import AuditEvent
from portal.auth.principal import SYSTEM
from portal.extensions import db
from portal.people.models import Child, Enrolment, School
from portal.scheduler import interrupted_jobs

from . import processes

H_ROSTER = "児童生徒番号,宛名番号,氏名,氏名カナ,生年月日,性別,住所,学校コード,学校名,学年,組,出席番号"
H_TEATE = "宛名番号,氏名,氏名カナ,生年月日,受給者宛名番号,支給状況,認定日"
CHUNK = "backoffice.linkage.importer.service.INSERT_CHUNK=50"


def count(session, model) -> int:
    session.remove()  # a fresh transaction: see what other processes committed
    return session.scalar(select(func.count()).select_from(model))


def csv_file(path, header, rows):
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode("utf-8"))
    return path


@pytest.fixture
def no_job_store(app):
    """``scheduler run`` creates APScheduler's table in the test database: drop it afterwards."""
    yield
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS apscheduler_jobs"))


def test_killed_roster_import_leaves_no_partial_batch_and_can_be_rerun(app, session, make, tmp_path):
    make.year()
    session.commit()
    f = csv_file(tmp_path / "roster.csv", H_ROSTER, [
        f"R{i:05d},,見守 子{i},ミマモリ コ,2018-0{1 + i % 9}-1{i % 10},{1 + i % 2},,E900,みまもり小,2,{1 + i % 3},{i}"
        for i in range(300)
    ])
    proc = processes.start(app, "roster", "import", str(f), pause_on="INSERT INTO child", after=3, sets=(CHUNK,))
    processes.wait_for_line(proc, "PAUSED")  # 150 of 300 children written, not committed
    assert count(session, Child) == 0
    processes.kill(proc)

    for model in (Child, Enrolment, School, ImportBatch):
        assert count(session, model) == 0, model.__name__

    again = processes.run(app, "roster", "import", str(f))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "children_created 300" in again.stdout
    assert count(session, Child) == 300 and count(session, Enrolment) == 300
    assert count(session, ImportBatch) == 1


def test_killed_linkage_import_leaves_no_partial_batch_and_can_be_rerun(app, session, make, tmp_path):
    klass = make.school_class(grade=3)
    kids = [make.child(klass, atena_no=f"A{i:04d}", name=f"見守 花子{i}", name_kana="ミマモリ ハナコ",
                       birth_date=date(2017, 5, 1 + i), sex="F") for i in range(20)]
    for kid in kids:
        give_consent(session, kid, "data_linkage")
    session.commit()
    rows = [f"{k.atena_no},{k.name},ミマモリ ハナコ,{k.birth_date.isoformat()},,支給中,2026-0{m}-01"
            for k in kids for m in (4, 5, 6)]
    f = csv_file(tmp_path / "teate.csv", H_TEATE, rows)
    proc = processes.start(app, "linkage", "import", "jidou_teate", str(f),
                           pause_on="INSERT INTO linkage_record", after=1, sets=(CHUNK,))
    processes.wait_for_line(proc, "PAUSED")  # the batch row and 50 of 60 records written, not committed
    processes.kill(proc)

    assert count(session, LinkedRecord) == 0 and count(session, ImportBatch) == 0
    assert session.scalar(select(func.count()).where(AuditEvent.action == "linkage.import")) == 0

    again = processes.run(app, "linkage", "import", "jidou_teate", str(f))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(total 60)" in again.stdout and "already imported" not in again.stdout
    assert count(session, LinkedRecord) == 60 and count(session, ImportBatch) == 1


def _expired_records(session, make, n=6) -> int:
    klass = make.school_class(grade=3)
    kids = [make.child(klass, atena_no=f"B{i:04d}", name=f"見守 太郎{i}", name_kana="ミマモリ タロウ",
                       birth_date=date(2017, 6, 1 + i), sex="M") for i in range(n)]
    for kid in kids:
        give_consent(session, kid, "data_linkage")
    data = ("\r\n".join([H_TEATE] + [f"{k.atena_no},{k.name},ミマモリ タロウ,{k.birth_date.isoformat()},,支給中,2020-04-01"
                                      for k in kids]) + "\r\n").encode()
    report = importer.import_file(session, SYSTEM, "jidou_teate", data, filename="old.csv")
    session.commit()
    assert sum(report.linked.values()) == n  # certified in 2020, kept 24 months: expired now
    return n


def _purges(session) -> list[dict]:
    session.remove()
    return [e.detail for e in session.scalars(select(AuditEvent).where(AuditEvent.action == "linkage.purge_expired"))]


def test_scheduler_restarted_mid_job_neither_loses_nor_repeats_work(app, session, make, no_job_store):
    n = _expired_records(session, make)

    # A run of the retention job is killed half-way (its DELETE done, not committed) ...
    proc = processes.start(app, "scheduler", "run-once", "linkage.purge_expired", pause_on="DELETE FROM linkage_record")
    processes.wait_for_line(proc, "PAUSED")
    processes.kill(proc)
    assert count(session, LinkedRecord) == n and _purges(session) == []  # nothing half-done
    assert interrupted_jobs(session) == ["linkage.purge_expired"]  # ... and it is known to be unfinished

    # The scheduler starts, runs the interrupted job again, and is itself killed mid-job.
    sched = processes.start(app, "scheduler", "run", "--no-wait", pause_on="DELETE FROM linkage_record")
    processes.wait_for_line(sched, "PAUSED")
    processes.kill(sched)
    assert count(session, LinkedRecord) == n and _purges(session) == []

    # Restarted: it takes over the dead leader's lock at once and finishes the work, once.
    sched = processes.start(app, "scheduler", "run", "--no-wait")
    lines = processes.wait_for_line(sched, "scheduler started")
    assert any("interrupted job linkage.purge_expired run again" in line for line in lines)
    assert "scheduler stopped" in processes.stop(sched)
    assert count(session, LinkedRecord) == 0
    assert _purges(session) == [{"removed": n}]
    assert interrupted_jobs(session) == []

    # Running it again repeats nothing.
    again = processes.run(app, "scheduler", "run-once", "linkage.purge_expired")
    assert "done" in again.stdout, again.stdout + again.stderr
    assert _purges(session) == [{"removed": n}]


def test_two_scheduler_processes_never_both_run_a_job(app, session, no_job_store):
    first = processes.start(app, "scheduler", "run", "--no-wait")
    processes.wait_for_line(first, "scheduler started")
    second = processes.run(app, "scheduler", "run", "--no-wait")
    assert second.returncode == 1
    assert "another scheduler process holds the lock" in second.stdout
    assert "scheduler stopped" in processes.stop(first)

    # One job, two processes: while one runs it (paused mid-job), the other is refused.
    running = processes.start(app, "scheduler", "run-once", "linkage.purge_expired",
                              pause_on="DELETE FROM linkage_review_candidate")
    processes.wait_for_line(running, "PAUSED")
    other = processes.run(app, "scheduler", "run-once", "linkage.purge_expired")
    assert "skipped: another process is running it" in other.stdout, other.stdout + other.stderr
    processes.kill(running)
    after = processes.run(app, "scheduler", "run-once", "linkage.purge_expired")  # the holder is gone
    assert "done" in after.stdout, after.stdout + after.stderr

    # With the leader stopped cleanly, a new scheduler starts at once.
    again = processes.start(app, "scheduler", "run", "--no-wait")
    processes.wait_for_line(again, "scheduler started")
    assert "scheduler stopped" in processes.stop(again)
