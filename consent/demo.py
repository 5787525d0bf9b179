"""Demo consent: most families consent to all three purposes, some to none, some in part.

Events are written directly (a backfilled history, like paper forms collected
at enrolment), not through the service, so loading stays fast.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from consent.catalogue import ensure_purposes
from consent.models import Action, Channel, ConsentEvent, Party
from consent.service import document_for
from portal.people.models import Enrolment, GuardianChild, SchoolClass

ALL = ("data_linkage", "wellbeing_survey", "share_with_partners")
PARTIAL = [("wellbeing_survey",), ("data_linkage", "wellbeing_survey"), ("wellbeing_survey", "share_with_partners")]
DEMO_EMAIL_PREFIX = "family@"


def load(session, ctx) -> None:
    rng = ctx.rng
    purposes = ensure_purposes(session)
    docs = {(code, loc): document_for(session, p, loc) for code, p in purposes.items() for loc in ("ja", "en")}
    grades = dict(
        session.execute(
            select(Enrolment.child_id, SchoolClass.grade).join(SchoolClass, SchoolClass.id == Enrolment.class_id)
            .where(Enrolment.school_year_id == ctx.year.id)
        ).all()
    )
    guardian_of = dict(session.execute(select(GuardianChild.child_id, GuardianChild.guardian_id)).all())
    guardians = {g.id: g for g in ctx.guardians}
    start = datetime(2026, 4, 8, 1, 0, tzinfo=UTC)
    events = []
    for child in ctx.children:
        g = guardians.get(guardian_of.get(child.id))
        is_demo_family = bool(g and g.email and g.email.startswith(DEMO_EMAIL_PREFIX))
        roll = rng.random()
        if is_demo_family:
            codes = ("data_linkage", "wellbeing_survey")
        elif roll < 0.72:
            codes = ALL
        elif roll < 0.84:
            codes = ()
        else:
            codes = rng.choice(PARTIAL)
        online = bool(g and g.email)
        locale = g.locale if g else "ja"
        at = start + timedelta(days=rng.randrange(20), minutes=rng.randrange(600))
        for code in codes:
            doc = docs[(code, locale)]
            events.append(
                ConsentEvent(
                    child_id=child.id, purpose_id=purposes[code].id, party=Party.guardian,
                    guardian_id=g.id if g else None, action=Action.grant, version=1, document_id=doc.id,
                    locale=doc.locale, at=at, recorded_at=at,
                    channel=Channel.online if online else Channel.paper,
                    form_no=None if online else f"P{child.student_no}",
                )
            )
            own = grades.get(child.id, 0) >= purposes[code].child_from_grade
            if own and (is_demo_family or rng.random() < 0.85):
                child_at = at + timedelta(days=rng.randrange(1, 10))
                events.append(
                    ConsentEvent(
                        child_id=child.id, purpose_id=purposes[code].id, party=Party.child, action=Action.grant,
                        version=1, document_id=docs[(code, "ja")].id, locale="ja", at=child_at,
                        recorded_at=child_at, channel=Channel.online,
                    )
                )
        # A few families granted and later withdrew one purpose.
        if codes and not is_demo_family and rng.random() < 0.04:
            code = codes[-1]
            w_at = at + timedelta(days=15)
            events.append(
                ConsentEvent(
                    child_id=child.id, purpose_id=purposes[code].id, party=Party.guardian,
                    guardian_id=g.id if g else None, action=Action.withdraw, version=1,
                    document_id=docs[(code, locale)].id, locale=docs[(code, locale)].locale, at=w_at,
                    recorded_at=w_at, channel=Channel.online if online else Channel.paper,
                )
            )
    session.add_all(events)
    session.flush()
    # Each event has its audit row, as one recorded through the service has
    # (consent.anchor: `audit verify` holds every consent event to it).
    from portal.audit.service import record_many
    from portal.auth.principal import SYSTEM

    id_of = {p.id: code for code, p in purposes.items()}
    record_many(session, SYSTEM, [
        {"action": f"consent.{ev.action.value}", "child_id": ev.child_id, "purpose": id_of[ev.purpose_id],
         "at": ev.recorded_at,
         "detail": {"event_id": ev.id, "party": ev.party.value, "version": ev.version, "channel": ev.channel.value,
                    "backfill": True}}
        for ev in events
    ])
