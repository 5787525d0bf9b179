"""Signed checkpoints of the audit log, kept outside the database.

A checkpoint is the log's size and Merkle tree head (RFC 9162) in the C2SP
checkpoint format, signed with the audit signing key (:mod:`portal.audit.note`).
:func:`write` verifies the whole log first (a broken log is never signed),
writes the checkpoint to ``MIMAMORI_AUDIT_CHECKPOINT_DIR`` (point it at
another volume than the database's) and e-mails it to every active data
steward, who can check it with the verifier key alone
(``flask --app portal audit public-key``). ``audit verify`` then holds the
log to every stored checkpoint: a log shorter than a checkpoint was
truncated, a log whose first N rows hash to another root was rewritten.

What a checkpoint cannot do: rows written after the last one can still be
removed, by someone who can write to the database, without a trace.
Checkpoints are written every hour (the ``audit.checkpoint`` job) and on
demand (``flask --app portal audit checkpoint``).
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit import keys as audit_keys
from portal.audit import note
from portal.orm import utcnow

log = logging.getLogger(__name__)

PREFIX, SUFFIX = "checkpoint-", ".txt"


class AuditLogBroken(RuntimeError):
    """The log failed its check: no checkpoint is signed over it."""

    def __init__(self, result):
        super().__init__(f"the audit log failed its check ({len(result.findings)} problems): no checkpoint was signed")
        self.result = result


def directory() -> Path:
    return Path(current_app.config["MIMAMORI_AUDIT_CHECKPOINT_DIR"])


def load_all(k: audit_keys.AuditKeys | None = None, folder: Path | None = None):
    """The checkpoints in the directory whose signature verifies, and (path, reason) for those that do not."""
    k = k or audit_keys.current()
    folder = folder or directory()
    good, bad = [], []
    if not folder.is_dir():
        return good, bad
    for path in sorted(folder.glob(f"{PREFIX}*{SUFFIX}")):
        try:
            good.append(note.open_checkpoint(path.read_text(encoding="utf-8"), k.verifiers, origin=k.name))
        except (note.NoteError, UnicodeDecodeError) as exc:
            bad.append((path, str(exc)))
    return good, bad


def read_file(path: Path, k: audit_keys.AuditKeys | None = None) -> note.Checkpoint:
    k = k or audit_keys.current()
    return note.open_checkpoint(Path(path).read_text(encoding="utf-8"), k.verifiers, origin=k.name)


@dataclass
class Written:
    path: Path | None  # None: the log has not grown since the last checkpoint
    size: int
    text: str
    mailed: int = 0
    result: object = None  # the VerifyResult of the check before signing


def _write_atomically(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write(session: Session, now: datetime | None = None, *, mail: bool = True, force: bool = False) -> Written:
    """Verify the log, then sign, store and mail a checkpoint of it (unless it has not grown)."""
    from portal.audit.service import verify

    now = now or utcnow()
    k = audit_keys.current()
    result = verify(session)
    if not result.ok:
        if mail:
            _mail_stewards(session, broken=result)
        raise AuditLogBroken(result)
    text = note.sign(note.checkpoint_text(k.name, result.tree_size, result.tree_root), k.name, k.signers[0])
    path = directory() / f"{PREFIX}{result.tree_size:012d}{SUFFIX}"
    if path.exists() and not force and result.covered == result.tree_size:
        return Written(None, result.tree_size, path.read_text(encoding="utf-8"), result=result)
    _write_atomically(path, text)
    log.info("audit checkpoint written: %d rows", result.tree_size)
    written = Written(path, result.tree_size, text, result=result)
    if mail:
        written.mailed = _mail_stewards(session, checkpoint=text, size=result.tree_size, at=now)
    return written


def _mail_stewards(session: Session, *, checkpoint: str | None = None, size: int = 0, at=None, broken=None) -> int:
    from flask_babel import force_locale
    from flask_babel import gettext as _

    from portal import mail
    from portal.i18n import local_datetime
    from portal.people.models import Role, Staff

    stewards = session.scalars(
        select(Staff).where(Staff.role == Role.data_steward, Staff.active.is_(True)).order_by(Staff.id)
    ).all()
    sent = 0
    for st in stewards:
        with force_locale(st.locale or "ja"):
            if broken is None:
                subject = _("Audit log checkpoint: %(n)d entries", n=size)
                body = "\n\n".join([
                    _("The audit log was checked and signed at %(at)s. Keep this e-mail: it is the record, "
                      "outside the portal's database, of the log's first %(n)d entries.", at=local_datetime(at), n=size),
                    _("A later check compares the log with this checkpoint: entries removed or changed among these "
                      "are detected. Entries written after it are protected only by the next checkpoint."),
                    _("The checkpoint (C2SP signed note; verify it with the verifier key printed by "
                      "\"flask --app portal audit public-key\"):"),
                    checkpoint.rstrip("\n"),
                ])
            else:
                subject = _("The audit log failed its check")
                body = "\n\n".join([
                    _("The scheduled check of the audit log found %(n)d problems, so no checkpoint was signed. "
                      "Run \"flask --app portal audit verify\" and report this to the security officer.",
                      n=len(broken.findings)),
                ])
            msg = mail.build_message(st.email, subject, body + "\n")
        try:
            mail.send(msg)
            sent += 1
        except mail.MailError:
            log.warning("audit checkpoint mail to steward %s failed", st.id)
    return sent
