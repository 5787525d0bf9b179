"""Linkage's plugs into consent: the withdrawal purger, the disclosure
section and the file register entries (from the data item catalogue)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.linkage.catalogue import load

PURPOSE = "data_linkage"


def _purge(session: Session, child_ids: list[int]) -> dict[str, int]:
    from backoffice.linkage.importer.service import purge_children

    return purge_children(session, child_ids)


def _disclosure(session: Session, child_id: int) -> list[dict]:
    from backoffice.linkage.models import LinkedRecord

    rows = session.scalars(select(LinkedRecord).where(LinkedRecord.child_id == child_id, LinkedRecord.status == "linked")
                           .order_by(LinkedRecord.source, LinkedRecord.record_date))
    return [{"source": r.source, "date": r.record_date.isoformat() if r.record_date else None,
             "method": r.method, "data": dict(r.data or {}), "kept_until": r.expires_on.isoformat()} for r in rows]


def _file_register() -> list[dict]:
    out = []
    for spec in load().linkable:
        out.append({
            "name": spec.name.get("ja"),
            "purpose_code": PURPOSE,
            "items": [c.header for c in spec.kept],
            "source": spec.department.get("ja"),
            "retention": f"{spec.retention_months}か月",
        })
    return out


def register() -> None:
    from consent import hooks

    hooks.register_purger(PURPOSE, _purge)
    hooks.register_disclosure_section("linkage", _l("Linked administrative records"), _disclosure)
    hooks.register_file_register_source(_file_register)
