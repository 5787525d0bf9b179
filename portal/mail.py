"""Sending e-mail: SMTP in production, files in development, memory in tests.

Message bodies hold personal data, so nothing here logs them.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from flask import current_app

log = logging.getLogger(__name__)


class MailError(RuntimeError):
    pass


def build_message(to: str, subject: str, text: str, html: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = current_app.config["MAIL_FROM"]
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="mimamori.invalid")
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


def outbox() -> list[EmailMessage]:
    """Messages kept by the memory backend (tests)."""
    return current_app.extensions.setdefault("mimamori_outbox", [])


def send(msg: EmailMessage) -> None:
    backend = current_app.config["MAIL_BACKEND"]
    if backend == "memory":
        outbox().append(msg)
        return
    if backend == "file":
        folder = Path(current_app.instance_path) / "outbox"
        folder.mkdir(parents=True, exist_ok=True)
        name = msg["Message-ID"].strip("<>").replace("@", "_")
        (folder / f"{name}.eml").write_bytes(bytes(msg))
        log.info("mail written to instance/outbox")
        return
    cfg = current_app.config
    try:
        with smtplib.SMTP(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=30) as smtp:
            if cfg["MAIL_USE_TLS"]:
                smtp.starttls()
            if cfg["MAIL_USERNAME"]:
                smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("mail delivery failed: %s", type(exc).__name__)
        raise MailError(str(type(exc).__name__)) from exc
