"""Helpers for other domains' tests (and demo loaders): give or withdraw consent.

    from consent.testing import give_consent
    give_consent(session, child, "data_linkage", "wellbeing_survey")
    give_consent(session, child, "data_linkage", withdraw=True)

The purposes and a published current version are created on demand (the
three demo purposes with their real texts; any other code with a short
placeholder text). Events are recorded through the same service the pages
use, so withdrawal runs the registered purgers and writes the audit rows.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import service
from consent.catalogue import DEMO_PURPOSES
from consent.catalogue import ensure_purposes as _ensure_demo
from consent.gate import child_consent_required
from consent.models import Action, ConsentPurpose, Party
from portal.auth.principal import SYSTEM, Principal
from portal.people.models import Child, GuardianChild

_DEMO_CODES = {p["code"] for p in DEMO_PURPOSES}


def ensure_purposes(session: Session, *codes: str) -> dict[str, ConsentPurpose]:
    """The demo purposes (all three, or those named), plus any other code named."""
    out = _ensure_demo(session, tuple(c for c in codes if c in _DEMO_CODES) if codes else None)
    for code in codes:
        if code in out:
            continue
        purpose = service.purpose_by_code(session, code)
        if purpose is None:
            purpose = ConsentPurpose(code=code, title={"ja": code, "en": code}, summary={"ja": code, "en": code})
            session.add(purpose)
            session.flush()
        if service.current_version(session, purpose.id) is None:
            service.publish_version(
                session, SYSTEM, purpose, {"ja": (code, f"{code} の同意", ""), "en": (code, f"Consent to {code}", "")}
            )
        out[code] = purpose
    return out


def _guardian_principal(session: Session, child: Child) -> Principal:
    gid = session.scalar(
        select(GuardianChild.guardian_id).where(GuardianChild.child_id == child.id).order_by(GuardianChild.id).limit(1)
    )
    return Principal(kind="guardian", id=gid, role="guardian") if gid else SYSTEM


def give_consent(session: Session, child: Child, *purpose_codes: str, withdraw: bool = False) -> None:
    """Record the guardian's (and, where required, the child's) grant, or the guardian's withdrawal."""
    purposes = ensure_purposes(session, *purpose_codes)
    guardian = _guardian_principal(session, child)
    student = Principal(kind="student", id=child.id, role="student")
    for code in purpose_codes:
        purpose = purposes[code]
        parties = [(guardian, Party.guardian)]
        if not withdraw and child_consent_required(session, child.id, purpose):
            parties.append((student, Party.child))
        for actor, party in parties:
            try:
                service.record_event(
                    session, actor, child.id, purpose, party, Action.withdraw if withdraw else Action.grant
                )
            except service.AlreadyRecorded:
                pass
    session.flush()
