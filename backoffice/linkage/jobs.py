"""Imports run outside the request, and linkage's scheduled jobs.

The upload page saves the file under ``instance/uploads`` (named by its
SHA-256, never by the uploader's name), records an :class:`ImportJob` and
starts :func:`run_import_job` in a background thread; the page then polls
:func:`status` (a small JSON document) for the progress bar. Status and
progress are rows in the database, so the polling works whichever gunicorn
worker answers it. ``run_import_job`` is a plain function: tests (and the
``LINKAGE_IMPORT_INLINE`` setting) run it synchronously.

Scheduled (portal.scheduler): ``linkage.purge_expired`` deletes linked
records past the catalogue's retention and uploads left over from previews
that were never confirmed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from flask import Flask
from flask_babel import force_locale
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backoffice.linkage.models import ImportJob
from portal import once
from portal.auth.principal import Principal
from portal.orm import utcnow
from portal.scheduler import holder_is_gone, this_process

log = logging.getLogger(__name__)

UPLOAD_DIR = "uploads"
#: A preview's file is kept this long for the steward to confirm it.
UPLOAD_TTL = timedelta(hours=24)
#: Progress is written at most this often (seconds).
PROGRESS_INTERVAL = 0.5


def upload_dir(instance_path: str) -> Path:
    d = Path(instance_path) / UPLOAD_DIR
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_upload(instance_path: str, data: bytes) -> str:
    """Store an uploaded file under its SHA-256; returns the hash.

    The file holds children's names, addresses and birth dates: it is kept
    encrypted (Fernet, ``MIMAMORI_ENCRYPTION_KEY``, as the database's free
    text) and readable by the service account only, never in clear on disk."""
    from portal.crypto import current_fernet

    digest = hashlib.sha256(data).hexdigest()
    path = upload_dir(instance_path) / f"{digest}.upload"
    if not path.exists():
        tmp = path.with_suffix(f".{threading.get_ident()}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(current_fernet().encrypt(data))
        tmp.replace(path)
    return digest


def read_upload(instance_path: str, digest: str) -> bytes:
    """The uploaded file's bytes (FileNotFoundError when it is gone or no key reads it)."""
    from cryptography.fernet import InvalidToken

    from portal.crypto import current_fernet

    sealed = upload_path(instance_path, digest).read_bytes()
    try:
        return current_fernet().decrypt(sealed)
    except InvalidToken:
        raise FileNotFoundError(digest) from None


def upload_path(instance_path: str, digest: str) -> Path:
    return upload_dir(instance_path) / f"{digest}.upload"


def create_job(session: Session, actor: Principal, source: str, digest: str, filename: str | None,
               rows_total: int | None, locale: str) -> ImportJob:
    """A job for an uploaded file; a confirmation sent twice (a double click) gets the job already
    waiting or running for the same file, so the file is imported once (the person's row lock
    orders the two)."""
    from portal.people.models import Staff

    once.lock(session, Staff, actor.id)
    waiting = session.scalar(
        select(ImportJob).where(ImportJob.actor_id == actor.id, ImportJob.source == source,
                                ImportJob.file_sha256 == digest, ImportJob.status.in_(("queued", "running")))
        .order_by(ImportJob.id).limit(1).execution_options(populate_existing=True)
    )
    if waiting is not None:
        return waiting
    job = ImportJob(source=source, filename=(filename or "")[:255], file_sha256=digest, rows_total=rows_total,
                    locale=locale[:5], actor_id=actor.id, status="queued", phase="queued", runner=this_process())
    session.add(job)
    session.flush()
    return job


def status(job: ImportJob) -> dict:
    """What the page's progress bar needs."""
    return {
        "id": job.id, "status": job.status, "phase": job.phase, "done": job.rows_done, "total": job.rows_total,
        "batch": job.batch_id, "already_imported": job.already_imported, "error": job.error,
    }


def settle_interrupted(session: Session, job: ImportJob) -> bool:
    """Mark a queued or running job whose process is gone as failed; True if it was.

    The import's transaction died with its process, so nothing of it was
    stored; the page says so instead of showing a progress bar that never
    moves. (A runner on another machine cannot be checked from here.)
    """
    if job.status not in ("queued", "running") or not job.runner or not holder_is_gone(job.runner):
        return False
    with force_locale(job.locale):
        from flask_babel import gettext as _

        message = _("The import was interrupted (the server stopped); nothing was stored. Upload the file again.")
    changed = session.execute(
        update(ImportJob)
        .where(ImportJob.id == job.id, ImportJob.status == job.status, ImportJob.runner == job.runner)
        .values(status="failed", error=message[:500], finished_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(job)
    if changed:
        log.warning("linkage import job %s interrupted: its process is gone", job.id)
    return bool(changed)


def _set(engine, job_id: int, **values) -> None:
    """Write the job's row in its own short transaction (visible at once to
    the polling requests, whatever the import's transaction is doing)."""
    with Session(engine) as s, s.begin():
        s.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))


def run_import_job(app: Flask, job_id: int) -> str:
    """Run one queued job to its end; returns its final status.

    The import is one transaction (all or nothing); the job row is updated
    beside it. Claiming is a conditional UPDATE, so a job never runs twice.
    """
    from backoffice.linkage.importer import service as importer
    from portal.extensions import db
    from portal.tabular import TabularError

    with app.app_context():
        engine = db.engine
        with Session(engine) as s, s.begin():
            claimed = s.execute(update(ImportJob).where(ImportJob.id == job_id, ImportJob.status == "queued")
                                .values(status="running", phase="reading", started_at=utcnow(),
                                        runner=this_process())).rowcount
        if not claimed:
            return "skipped"
        session = db.session
        job = session.get(ImportJob, job_id)
        source, digest, filename, locale = job.source, job.file_sha256, job.filename, job.locale
        actor = Principal("staff", job.actor_id, "data_steward", locale)
        total = job.rows_total
        session.rollback()  # end the read: the import opens its own transaction
        path = upload_path(app.instance_path, digest)
        last = [0.0]

        def progress(phase: str, done: int, rows: int | None) -> None:
            now = time.monotonic()
            if phase == "linking" and done and now - last[0] < PROGRESS_INTERVAL:
                return
            last[0] = now
            _set(engine, job_id, phase=phase, rows_done=done, rows_total=rows if rows is not None else total)

        try:
            if not path.exists():
                raise FileNotFoundError(digest)
            data = read_upload(app.instance_path, digest)
            report = importer.import_file(session, actor, source, data, filename or None, progress=progress)
            session.commit()
        except TabularError as exc:
            session.rollback()
            with force_locale(locale):
                message = str(exc.message)
            _set(engine, job_id, status="failed", error=message[:500], finished_at=utcnow())
            result = "failed"
        except FileNotFoundError:
            session.rollback()
            with force_locale(locale):
                from flask_babel import gettext as _

                message = _("The uploaded file has expired; upload it again.")
            _set(engine, job_id, status="failed", error=message, finished_at=utcnow())
            result = "failed"
        except Exception:
            session.rollback()
            log.exception("linkage import job %s failed", job_id)
            with force_locale(locale):
                from flask_babel import gettext as _

                message = _("The import failed because of an internal error; nothing was stored.")
            _set(engine, job_id, status="failed", error=message, finished_at=utcnow())
            result = "failed"
        else:
            _set(engine, job_id, status="done", phase="done", batch_id=report.batch_id or report.already_imported,
                 already_imported=bool(report.already_imported), rows_done=report.rows_read,
                 rows_total=report.rows_read, finished_at=utcnow())
            result = "done"
        finally:
            db.session.remove()
            path.unlink(missing_ok=True)  # imported or refused: the file is not kept
        return result


def start(app: Flask, job_id: int) -> None:
    """Run the job in a background thread of this process (or inline when
    ``LINKAGE_IMPORT_INLINE`` is set, as in tests)."""
    if app.config.get("LINKAGE_IMPORT_INLINE"):
        run_import_job(app, job_id)
        return
    threading.Thread(target=run_import_job, args=(app, job_id), name=f"linkage-import-{job_id}", daemon=True).start()


# -- scheduled jobs -----------------------------------------------------------------


def purge_expired(session: Session, now: datetime) -> None:
    """The retention job: linked records past the catalogue's retention, and
    preview uploads nobody confirmed within :data:`UPLOAD_TTL`."""
    from flask import current_app

    from backoffice.linkage.importer.service import purge_expired as purge_records

    purge_records(session, now.date())
    cutoff = (now - UPLOAD_TTL).timestamp()
    for f in upload_dir(current_app.instance_path).glob("*.upload"):
        try:
            if f.stat().st_mtime < cutoff:
                f.unlink()
        except FileNotFoundError:
            pass


def register_jobs() -> None:
    from portal.scheduler import register_job

    register_job("linkage.purge_expired", "backoffice.linkage.jobs:purge_expired",
                 {"trigger": "cron", "hour": 3, "minute": 15})
