"""Consent events are anchored in the audit log: each one has its keyed, chained audit row.

``ConsentEvent`` rows are append-only in the application, but someone with
the database could insert a grant (and put a child into the gate), change
one, or delete a withdrawal. Each event's audit row (``consent.grant`` /
``consent.withdraw``, detail ``event_id``) carries what the event says, under
the audit key, so ``flask --app portal audit verify`` compares the two.
Events of a child whose record was deleted go with the child (the audit rows
stay): that is not reported.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session


def check(session: Session) -> list[str]:
    from consent.models import ConsentEvent, ConsentPurpose
    from portal.audit.models import AuditEvent
    from portal.people.models import Child

    audited = {}
    for row in session.execute(
        select(AuditEvent.action, AuditEvent.child_id, AuditEvent.purpose, AuditEvent.detail)
        .where(AuditEvent.action.in_(("consent.grant", "consent.withdraw")), AuditEvent.seq.is_not(None))
    ):
        event_id = (row.detail or {}).get("event_id")
        if event_id is not None:
            audited[int(event_id)] = row
    problems = []
    seen = set()
    for ev in session.execute(
        select(ConsentEvent.id, ConsentEvent.child_id, ConsentEvent.party, ConsentEvent.action,
               ConsentEvent.version, ConsentEvent.channel, ConsentPurpose.code)
        .join(ConsentPurpose, ConsentPurpose.id == ConsentEvent.purpose_id)
        .order_by(ConsentEvent.id)
    ):
        seen.add(ev.id)
        a = audited.get(ev.id)
        if a is None:
            problems.append(f"consent event {ev.id} has no audit row: it was not recorded by the application")
            continue
        d = a.detail or {}
        if (a.action, a.child_id, a.purpose, d.get("party"), d.get("version"), d.get("channel")) != (
            f"consent.{ev.action.value}", ev.child_id, ev.code, ev.party.value, ev.version, ev.channel.value
        ):
            problems.append(f"consent event {ev.id} differs from its audit row: it was altered")
    gone = sorted(set(audited) - seen)
    if gone:
        children = set(session.scalars(select(Child.id).where(Child.id.in_({audited[i].child_id for i in gone}))))
        problems += [f"consent event {i} was deleted (its audit row remains)" for i in gone
                     if audited[i].child_id in children]
    return problems
