"""The one place casework talks to screening (its flag contract)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.screening import reads
from backoffice.screening import service as screening
from backoffice.screening.models import Flag, FlagStatus, Outcome
from portal.auth.principal import Principal


def open_flags(principal: Principal) -> select:
    """SELECT of the open flags this principal may see (screening narrows by scope and the gate)."""
    return screening.open_flags_query(principal)


def open_flags_entity(principal: Principal):
    """The open flags this principal may see, as an entity to join (a subquery of :func:`open_flags`)."""
    from sqlalchemy.orm import aliased

    return aliased(Flag, open_flags(principal).order_by(None).subquery("f"))


def shown(session: Session, flag_id: int | None) -> Flag | None:
    """The case's flag for display, through the consent gate (None once its evidence may not be shown)."""
    return reads.by_id(session, flag_id)


def shown_many(session: Session, flag_ids) -> dict[int, Flag]:
    return reads.by_ids(session, flag_ids)


def visible_open_flag(session: Session, principal: Principal, flag_id: int) -> Flag | None:
    q = open_flags(principal).where(Flag.id == flag_id).order_by(None)
    return session.scalar(q)


def purposes_of(flag: Flag) -> tuple[bool, bool]:
    """(rests on linked records, rests on check-ins): withdrawing either closes the case."""
    return bool(getattr(flag, "needs_linkage", False)), bool(getattr(flag, "needs_survey", False))


def describe(flag: Flag, locale: str) -> list[str]:
    return screening.describe_reasons(flag, locale)


def resolve(session: Session, actor: Principal, flag_id: int, *, confirmed: bool, note: str | None) -> None:
    """The school decided: close the flag with the outcome the model learns from."""
    flag = session.get(Flag, flag_id)
    if flag is None or flag.status != FlagStatus.open:
        return
    screening.resolve_flag(
        session, actor, flag_id, note or "",
        outcome=(Outcome.confirmed if confirmed else Outcome.not_needed).value,
    )
