"""The one read path for flags and the consent-based evidence they carry.

A rule (or model) flag *is* consent-based data: its reasons are facts read
from linked records and check-ins. It is shown only while the child is in
the consent gate for every purpose its reasons rest on (``needs_linkage``,
``needs_survey``), and for at least one screening purpose.

A teacher's own concern (a manual flag) is not consent-based: the teacher's
words stay visible whatever the consent (duty of care). What *is*
consent-based on a manual flag (the indicator values recorded with it, the
model's score and factors) is shown only while the child is in the gate for
either purpose: :func:`load` hands out a manual flag of a child outside the
gate detached from the session and without that evidence.

Every page, export and PDF that shows a flag reads it here
(``tests/security/test_consent_gated_reads.py`` walks them all, and
``tests/security/test_one_read_path.py`` fails on a query around this module).
"""

from __future__ import annotations

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from backoffice.screening.indicators import LINKAGE, SURVEYS
from backoffice.screening.models import Flag, FlagSource, FlagStatus
from consent.gate import consented_child_ids


def screened_clause():
    """SQL: the flag's child is consented to either screening purpose."""
    return or_(Flag.child_id.in_(consented_child_ids(LINKAGE)), Flag.child_id.in_(consented_child_ids(SURVEYS)))


def evidence_clause():
    """SQL: the flag's consent-based evidence may be shown (every purpose its reasons need, and one at least)."""
    return and_(
        or_(Flag.needs_linkage.is_(False), Flag.child_id.in_(consented_child_ids(LINKAGE))),
        or_(Flag.needs_survey.is_(False), Flag.child_id.in_(consented_child_ids(SURVEYS))),
        screened_clause(),
    )


def shown_clause():
    """SQL: the flag may be shown at all (a manual flag always; any other through the gate)."""
    return or_(Flag.source == FlagSource.manual, evidence_clause())


def flags(*where) -> Select:
    """A SELECT of the :class:`Flag` rows that may be shown, narrowed by ``where``."""
    return select(Flag).where(shown_clause(), *where)


def open_shown_flags(*where) -> Select:
    return flags(Flag.status == FlagStatus.open, *where)


def load(session: Session, query: Select) -> list[Flag]:
    """Run a query of this module; a manual flag of a child outside the gate comes without its evidence.

    Such a flag is detached from the session (so blanking it writes nothing)
    with ``features``, ``model_score`` and ``model_factors`` emptied.
    """
    out = []
    for flag, screened in session.execute(query.add_columns(screened_clause().label("screened"))):
        if flag.source == FlagSource.manual and not screened:
            strip_evidence(session, flag)
        out.append(flag)
    return out


def strip_evidence(session: Session, flag: Flag) -> Flag:
    if flag in session:
        session.expunge(flag)
    flag.features = {}
    flag.model_score = None
    flag.model_factors = None
    return flag


def by_id(session: Session, flag_id: int | None) -> Flag | None:
    """One flag for display (a case page, a meeting summary), or None if it may not be shown."""
    if flag_id is None:
        return None
    found = load(session, flags(Flag.id == flag_id))
    return found[0] if found else None


def by_ids(session: Session, flag_ids) -> dict[int, Flag]:
    ids = [i for i in flag_ids if i]
    if not ids:
        return {}
    return {f.id: f for f in load(session, flags(Flag.id.in_(ids)))}
