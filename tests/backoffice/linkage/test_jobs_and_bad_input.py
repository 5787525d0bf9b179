"""The upload's background job (progress, status, failure), the scheduled
retention job, and every bad input of the issue at page level."""

from __future__ import annotations

import io
import os
import re
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from backoffice.linkage import jobs
from backoffice.linkage.importer import service
from backoffice.linkage.models import ImportBatch, ImportJob, LinkedRecord
from portal import scheduler
from portal.auth.principal import SYSTEM
from portal.people.models import Role

from .conftest import csv_bytes

H = "宛名番号,氏名,氏名カナ,生年月日,受給者宛名番号,支給状況,認定日"
ROW = "A0001,髙橋 花子,ﾀｶﾊｼ ﾊﾅｺ,H29.5.3,,支給中,R6.4.1"


def _upload(client, data: bytes, source="jidou_teate", name="teate.csv"):
    from tests.conftest import csrf_token_from

    html = client.get("/staff/linkage/").get_data(as_text=True)
    return client.post("/staff/linkage/", data={"csrf_token": csrf_token_from(html), "source": source,
                                                "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def _confirm(client, html: str):
    from tests.conftest import csrf_token_from

    fields = {k: re.search(rf'name="{k}"[^>]*value="([^"]*)"', html).group(1) for k in ("token", "source", "rows")}
    return client.post("/staff/linkage/confirm", data={"csrf_token": csrf_token_from(html), **fields,
                                                       "filename": "teate.csv"})


def _steward(login, make, session):
    steward = make.staff(Role.data_steward)
    session.commit()
    login(steward)
    return steward


# -- the job ------------------------------------------------------------------------


def test_import_reports_progress_by_phase_and_writes_only_at_the_end(session, kids):
    rows = [f"A0001,髙橋 花子,,2017-05-03,,支給中,2024-04-{d:02d}" for d in range(1, 29)] * 180  # 5,040 rows
    seen = []

    def progress(phase, done, total):
        seen.append((phase, done, total, session.scalar(select(func.count(ImportBatch.id)))))

    service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, *rows), progress=progress)
    phases = [p for p, *_ in seen]
    assert phases[0] == "reading" and "linking" in phases and phases[-1] == "saving"
    assert ("linking", 0, 5040, 0) in seen
    assert all(batches == 0 for *_, batches in seen)  # nothing written while reading and linking


def test_job_runs_records_status_and_removes_the_file(app, session, kids, make):
    steward = make.staff(Role.data_steward)
    digest = jobs.save_upload(app.instance_path, csv_bytes(H, ROW))
    job = jobs.create_job(session, steward, "jidou_teate", digest, "teate.csv", 1, "ja")
    session.commit()
    assert jobs.run_import_job(app, job.id) == "done"
    assert jobs.run_import_job(app, job.id) == "skipped"  # claimed once only
    session.expire_all()
    job = session.get(ImportJob, job.id)
    assert (job.status, job.rows_done, job.rows_total) == ("done", 1, 1)
    assert session.get(ImportBatch, job.batch_id).actor_id == steward.id
    assert not jobs.upload_path(app.instance_path, digest).exists()


def test_refused_file_fails_the_job_with_message_and_stores_nothing(app, session, make, kids):
    steward = make.staff(Role.data_steward)
    digest = jobs.save_upload(app.instance_path, csv_bytes("氏名,生年月日", "x,2017-01-01"))
    job = jobs.create_job(session, steward, "jidou_fuyou", digest, "bad.csv", 1, "ja")
    session.commit()
    assert jobs.run_import_job(app, job.id) == "failed"
    session.expire_all()
    job = session.get(ImportJob, job.id)
    assert job.status == "failed" and "支給区分" in job.error
    assert session.scalar(select(func.count(ImportBatch.id))) == 0
    assert session.scalar(select(func.count(LinkedRecord.id))) == 0


def test_job_in_a_background_thread(app, session, kids, make, monkeypatch):
    monkeypatch.setitem(app.config, "LINKAGE_IMPORT_INLINE", False)
    steward = make.staff(Role.data_steward)
    digest = jobs.save_upload(app.instance_path, csv_bytes(H, ROW))
    job = jobs.create_job(session, steward, "jidou_teate", digest, "teate.csv", 1, "ja")
    session.commit()
    jobs.start(app, job.id)
    worker = next(t for t in threading.enumerate() if t.name == f"linkage-import-{job.id}")
    worker.join(timeout=60)
    session.expire_all()
    assert session.get(ImportJob, job.id).status == "done"


def test_progress_page_polls_status_with_a_script_file(client, login, make, session, kids):
    steward = _steward(login, make, session)
    job = jobs.create_job(session, steward, "jidou_teate", "0" * 64, "teate.csv", 5000, "ja")
    job.status, job.phase, job.rows_done = "running", "linking", 1200
    session.commit()
    html = client.get(f"/staff/linkage/jobs/{job.id}").get_data(as_text=True)
    assert '<progress id="job-progress" max="5000" value="1200"' in html
    assert "linkage/job.js" in html and "<script>" not in html
    status = client.get(f"/staff/linkage/jobs/{job.id}/status").get_json()
    assert status == {"id": job.id, "status": "running", "phase": "linking", "done": 1200, "total": 5000,
                      "batch": None, "already_imported": False, "error": None,
                      "report_url": f"/staff/linkage/jobs/{job.id}"}
    other = make.staff(Role.data_steward)
    session.commit()
    login(other)
    assert client.get(f"/staff/linkage/jobs/{job.id}/status").status_code == 404


def test_failed_job_page_names_the_reason(client, login, make, session):
    steward = _steward(login, make, session)
    job = jobs.create_job(session, steward, "jidou_teate", "0" * 64, "teate.csv", None, "ja")
    job.status, job.error = "failed", "必須の列がありません"
    session.commit()
    html = client.get(f"/staff/linkage/jobs/{job.id}").get_data(as_text=True)
    assert 'role="alert"' in html and "必須の列がありません" in html


def _dead_pid() -> int:
    """A pid no process has: a child process, reaped."""
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("status", ["queued", "running"])
def test_a_job_whose_process_died_is_shown_as_interrupted_not_running(client, login, make, session, status):
    import socket

    steward = _steward(login, make, session)
    job = jobs.create_job(session, steward, "jidou_teate", "0" * 64, "teate.csv", 100, "ja")
    job.status, job.runner = status, f"{socket.gethostname()}:{_dead_pid()}"
    session.commit()
    data = client.get(f"/staff/linkage/jobs/{job.id}/status").get_json()
    assert data["status"] == "failed"
    assert data["error"] == "取り込みが中断されました（サーバーが停止しました）。何も保存されていません。もう一度ファイルをアップロードしてください。"
    html = client.get(f"/staff/linkage/jobs/{job.id}").get_data(as_text=True)
    assert 'role="alert"' in html and "取り込みが中断されました" in html
    assert session.scalar(select(func.count(ImportBatch.id))) == 0


def test_an_interrupted_job_is_explained_in_english(client, login, make, session):
    import socket

    steward = _steward(login, make, session)
    job = jobs.create_job(session, steward, "jidou_teate", "0" * 64, "teate.csv", 100, "en")
    job.status, job.runner = "running", f"{socket.gethostname()}:{_dead_pid()}"
    session.commit()
    data = client.get(f"/staff/linkage/jobs/{job.id}/status").get_json()
    assert data["error"].startswith("The import was interrupted (the server stopped); nothing was stored.")


def test_a_running_job_of_a_live_process_or_another_machine_stays_running(client, login, make, session):
    import socket

    steward = _steward(login, make, session)
    here = jobs.create_job(session, steward, "jidou_teate", "0" * 64, "teate.csv", 100, "ja")
    here.status, here.runner = "running", f"{socket.gethostname()}:{os.getpid()}"
    elsewhere = jobs.create_job(session, steward, "jidou_teate", "1" * 64, "teate.csv", 100, "ja")
    elsewhere.status, elsewhere.runner = "running", "another-web-host:12345"
    session.commit()
    for job in (here, elsewhere):
        assert client.get(f"/staff/linkage/jobs/{job.id}/status").get_json()["status"] == "running"


def test_reimport_of_same_file_through_the_page_says_so(client, login, make, session, kids):
    _steward(login, make, session)
    for _ in range(2):
        resp = _confirm(client, _upload(client, csv_bytes(H, ROW)).get_data(as_text=True))
        page = client.get(resp.headers["Location"], follow_redirects=True).get_data(as_text=True)
    assert session.scalar(select(func.count(ImportBatch.id))) == 1
    assert session.scalar(select(func.count(LinkedRecord.id))) == 1
    assert "batch" in page.lower() or "バッチ" in page


# -- the scheduled retention job ---------------------------------------------------------


def test_purge_expired_is_registered_and_runs(app, session, kids):
    spec = scheduler.registered_jobs()["linkage.purge_expired"]
    assert spec.func_path == "backoffice.linkage.jobs:purge_expired" and spec.trigger_kwargs["trigger"] == "cron"
    service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, "A0001,高橋 花子,,2017-05-03,,支給中,2010-04-01"))
    old = jobs.upload_path(app.instance_path, jobs.save_upload(app.instance_path, b"old preview"))
    stale = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    os.utime(old, (stale, stale))
    fresh = jobs.upload_path(app.instance_path, jobs.save_upload(app.instance_path, b"fresh preview"))
    session.commit()
    assert scheduler.run_job("linkage.purge_expired", datetime.now(UTC), app=app)
    assert session.scalar(select(func.count(LinkedRecord.id))) == 0
    assert not old.exists() and fresh.exists()
    fresh.unlink()


# -- bad input, each at page level -----------------------------------------------------------


def test_xlsx_upload_previews_and_imports(client, login, make, session, kids):
    _steward(login, make, session)
    wb = Workbook()
    ws = wb.active
    ws.append(H.split(","))
    ws.append(["A0001", "髙橋 花子", "タカハシ ハナコ", date(2017, 5, 3), None, "支給中", date(2024, 4, 1)])
    buf = io.BytesIO()
    wb.save(buf)
    html = _upload(client, buf.getvalue(), name="teate.xlsx").get_data(as_text=True)
    assert "xlsx" in html and "髙橋 花子" in html
    resp = _confirm(client, html)
    page = client.get(resp.headers["Location"], follow_redirects=True).get_data(as_text=True)
    assert 'id="linked">1' in page
    assert session.scalar(select(LinkedRecord)).record_date == date(2024, 4, 1)


def test_header_only_file_refused(client, login, make, session):
    _steward(login, make, session)
    html = _upload(client, csv_bytes(H)).get_data(as_text=True)
    assert "ヘッダー" in html or "header" in html.lower()
    assert session.scalar(select(func.count(ImportBatch.id))) == 0


def test_empty_file_refused(client, login, make, session):
    _steward(login, make, session)
    resp = _upload(client, b"")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "空" in html or "empty" in html.lower() or "ファイルを選んで" in html or "Choose a file" in html
    html = _upload(client, b"\r\n\r\n").get_data(as_text=True)
    assert "空" in html or "empty" in html.lower()


def test_file_over_the_size_limit_refused_before_reading(client, login, make, session, app, monkeypatch):
    _steward(login, make, session)
    html = client.get("/staff/linkage/").get_data(as_text=True)
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 64 * 1024)  # stands for the 200 MB file
    from tests.conftest import csrf_token_from

    big = csv_bytes(H, *[ROW] * 2000)
    assert len(big) > 64 * 1024
    resp = client.post("/staff/linkage/", data={"csrf_token": csrf_token_from(html), "source": "jidou_teate",
                                                "file": (io.BytesIO(big), "big.csv")},
                       content_type="multipart/form-data")
    assert resp.status_code == 413
    assert "大きすぎ" in resp.get_data(as_text=True) or "too large" in resp.get_data(as_text=True).lower()
    assert not list(jobs.upload_dir(app.instance_path).glob("*.upload"))


def test_file_over_the_import_limit_refused_with_message(client, login, make, session, app, monkeypatch):
    _steward(login, make, session)
    monkeypatch.setitem(app.config, "LINKAGE_MAX_UPLOAD_BYTES", 100 * 1024)  # stands for 64 MB
    big = csv_bytes(H, *[ROW] * 3000)
    assert 100 * 1024 < len(big) < 500 * 1024
    resp = _upload(client, big)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and ("1 MB" in html)
    assert not list(jobs.upload_dir(app.instance_path).glob("*.upload"))


def test_impossible_date_row_named_by_line_and_column(client, login, make, session, kids):
    _steward(login, make, session)
    html = _upload(client, csv_bytes(H, ROW, "A0003,山田 太郎,,2017-02-30,,支給中,2024-04-01")).get_data(as_text=True)
    errors = re.search(r'id="preview-errors".*?</table>', html, re.S).group(0)
    assert "<td>3</td><td>生年月日</td>" in errors
    resp = _confirm(client, html)
    page = client.get(resp.headers["Location"], follow_redirects=True).get_data(as_text=True)
    assert "<td>3</td><td>生年月日</td>" in page and 'id="linked">1' in page
    assert session.scalar(select(func.count(LinkedRecord.id))) == 1  # the good row only


def test_formula_cells_refused_by_line_and_column(client, login, make, session, kids):
    _steward(login, make, session)
    bad = 'A0003,"=HYPERLINK(""http://x"",""y"")",,2017-08-01,,支給中,2024-04-01'
    html = _upload(client, csv_bytes(H, bad, ROW)).get_data(as_text=True)
    errors = re.search(r'id="preview-errors".*?</table>', html, re.S).group(0)
    assert "<td>2</td><td>氏名</td>" in errors
    resp = _confirm(client, html)
    client.get(resp.headers["Location"], follow_redirects=True)
    stored = session.scalars(select(LinkedRecord)).all()
    assert len(stored) == 1 and stored[0].source_row == 2  # the formula row is not stored


def test_neither_encoding_and_missing_column_refused_with_nothing_stored(client, login, make, session):
    _steward(login, make, session)
    assert "UTF-8" in _upload(client, "氏名\nx\n".encode("utf-16")).get_data(as_text=True)
    assert "支給区分" in _upload(client, csv_bytes("氏名,生年月日", "x,2017-01-01"), source="jidou_fuyou").get_data(as_text=True)
    assert session.scalar(select(func.count(ImportJob.id))) == 0
    assert session.scalar(select(func.count(ImportBatch.id))) == 0

