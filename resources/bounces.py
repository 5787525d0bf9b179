"""E-mails that bounce after the mail server accepted them.

A mail server that accepts a campaign e-mail may still fail to deliver it
and send back a delivery status notification (RFC 3464, ``multipart/report``)
to our sender address. :func:`record_bounces` reads such messages (from the
bounce mailbox, as files: ``flask resources record-bounces``), finds each
original e-mail by its Message-ID and marks that delivery failed, so the
coordinator sees it on the campaign page and can send a letter instead. A
bounce never causes a resend.

Non-standard bounces that quote the original message are matched by the
Message-ID they contain.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterable, Iterator
from email import message_from_bytes, policy
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.audit import service as audit
from portal.auth.principal import Principal
from resources.models import Channel, Delivery, DeliveryStatus

_OUR_ID = re.compile(r"<[^<>\s@]+@mimamori\.invalid>")  # portal.mail's Message-ID domain
_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


def _original_ids(msg: Message) -> set[str]:
    ids: set[str] = set()
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "text/rfc822-headers":
            raw = part.get_payload(decode=True) or b""
            headers = HeaderParser().parsestr(raw.decode("utf-8", "replace"))
            if headers.get("Message-ID"):
                ids.add(headers["Message-ID"].strip())
        elif ctype == "message/rfc822":
            for inner in part.get_payload() or []:
                if isinstance(inner, Message) and inner.get("Message-ID"):
                    ids.add(str(inner["Message-ID"]).strip())
    if not ids:  # a bounce without a report: look for our Message-ID in what it quotes
        ids = set(_OUR_ID.findall(msg.as_string()))
    return {i for i in ids if _OUR_ID.fullmatch(i)}


def _failure_status(msg: Message) -> str | None:
    """The DSN's status code for a failed recipient ("5.1.1"), "" when not a DSN, None when nothing failed."""
    reports = [p for p in msg.walk() if p.get_content_type() == "message/delivery-status"]
    if not reports:
        return ""
    for report in reports:
        for block in report.get_payload() or []:
            if not isinstance(block, Message):
                continue
            action = str(block.get("Action", "")).strip().lower()
            status = str(block.get("Status", "")).strip().split(" ")[0]
            if action == "failed" or status.startswith("5."):
                return status if _STATUS.match(status) else ""
    return None  # delayed, relayed or delivered: not a failure


def record_bounces(session: Session, actor: Principal, messages: Iterable[Message]) -> dict[str, int]:
    """Mark the e-mail deliveries these bounces are about as failed; counts (no addresses)."""
    counts = {"bounces": 0, "failed": 0, "not_failures": 0, "unknown": 0}
    for msg in messages:
        counts["bounces"] += 1
        status = _failure_status(msg)
        if status is None:  # a "delayed" or "delivered" notice
            counts["not_failures"] += 1
            continue
        ids = _original_ids(msg)
        if not ids:
            counts["unknown"] += 1
            continue
        error = f"bounced {status}".strip()
        matched = session.execute(
            update(Delivery)
            .where(Delivery.channel == Channel.email, Delivery.message_id.in_(ids),
                   Delivery.status.in_([DeliveryStatus.sent, DeliveryStatus.sending]))
            .values(status=DeliveryStatus.failed, error=error)
            .execution_options(synchronize_session=False)
        ).rowcount
        if matched:
            counts["failed"] += matched
        elif not session.scalar(select(Delivery.id).where(Delivery.message_id.in_(ids)).limit(1)):
            counts["unknown"] += 1
    session.flush()
    audit.record(session, actor, "resources.bounces_recorded", detail=dict(counts))
    return counts


def _starts_with_from(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def read_messages(paths: Iterable[Path]) -> Iterator[Message]:
    """Messages from .eml files, mbox files or folders of .eml files."""
    for path in paths:
        if path.is_dir():
            yield from read_messages(sorted(p for p in path.iterdir() if p.suffix == ".eml"))
        elif _starts_with_from(path):
            box = mailbox.mbox(path, create=False)
            try:
                for key in box.iterkeys():
                    yield message_from_bytes(box.get_bytes(key), policy=policy.compat32)
            finally:
                box.close()
        else:
            yield message_from_bytes(path.read_bytes(), policy=policy.compat32)
