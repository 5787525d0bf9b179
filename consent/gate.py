"""The consent gate: the one way other domains learn which children they may process.

Effective consent for a child and a purpose, at a moment, is computed from
the append-only :class:`consent.models.ConsentEvent` rows:

* every required party's latest event (by its date, then by id) is a grant;
* that grant is on a current version: a version at or after the latest
  version whose publisher chose that earlier consent *lapses*;
* the guardian is always required (the latest event of any guardian speaks
  for the guardian side); the child is required too from the purpose's
  ``child_from_grade`` (default 7, junior high), using the child's class in
  the current school year. A child with no current class needs the guardian only.

:func:`consented_child_ids` returns this as a SELECT of ``child_id`` so other
code joins it or uses it with ``.in_()``; nothing is loaded into Python.
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import Integer, Select, String, and_, bindparam, case, func, literal, or_, select
from sqlalchemy.orm import Session

from consent.models import Action, ConsentEvent, ConsentPurpose, ConsentVersion, OldConsent, Party
from portal.auth.access import current_year_id_subquery
from portal.people.models import Enrolment, SchoolClass


def _min_valid_version(purpose_id, at: datetime | None):
    q = select(func.coalesce(func.max(ConsentVersion.version), 1)).where(
        ConsentVersion.purpose_id == purpose_id,
        ConsentVersion.old_consent == OldConsent.lapses,
    )
    if at is not None:
        q = q.where(ConsentVersion.published_at <= at)
    return q.scalar_subquery()


def latest_events(purpose_id, at: datetime | None = None, child_ids: list[int] | None = None):
    """Subquery: each (child, party)'s latest event for a purpose (``rn`` = 1)."""
    E = ConsentEvent
    q = select(
        E.child_id,
        E.party,
        E.action,
        E.version,
        func.row_number()
        .over(partition_by=(E.child_id, E.party), order_by=(E.at.desc(), E.id.desc()))
        .label("rn"),
    ).where(E.purpose_id == purpose_id)
    if at is not None:
        q = q.where(E.at <= at)
    if child_ids is not None:
        q = q.where(E.child_id.in_(child_ids)) if len(child_ids) != 1 else q.where(E.child_id == child_ids[0])
    return q.subquery("ranked")


def consented_child_ids(
    purpose_code: str,
    at: datetime | None = None,
    *,
    only_child_id: int | None = None,
    only_child_ids: list[int] | None = None,
) -> Select:
    """A SELECT of the ids (column ``child_id``) of children with effective consent.

    ``at`` (timezone-aware) asks about a past moment; the child's grade is
    always the current one. ``only_child_id`` / ``only_child_ids`` narrow the
    evaluation to those children (an index look-up instead of a pass over
    every event).
    """
    if only_child_id is not None:
        only_child_ids = [only_child_id]
    P = ConsentPurpose
    purpose_id = select(P.id).where(P.code == purpose_code, P.active.is_(True)).scalar_subquery()
    from_grade = select(P.child_from_grade).where(P.code == purpose_code).scalar_subquery()
    min_version = _min_valid_version(purpose_id, at)
    ranked = latest_events(purpose_id, at, only_child_ids)
    valid_grant = and_(ranked.c.action == Action.grant, ranked.c.version >= min_version)
    # One pass over each child's latest events, grouped: no join between
    # derived tables (SQLite would nest-loop them), and the current grade is
    # a correlated look-up through the enrolment index.
    grade = (
        select(SchoolClass.grade)
        .join(Enrolment, Enrolment.class_id == SchoolClass.id)
        .where(
            Enrolment.child_id == ranked.c.child_id,
            Enrolment.school_year_id == current_year_id_subquery(),
        )
        .limit(1)
        .scalar_subquery()
    )
    guardian_ok = func.max(case((and_(ranked.c.party == Party.guardian, valid_grant), 1), else_=0))
    child_ok = func.max(case((and_(ranked.c.party == Party.child, valid_grant), 1), else_=0))
    return (
        select(ranked.c.child_id.label("child_id"))
        .where(ranked.c.rn == 1)
        .group_by(ranked.c.child_id)
        .having(
            and_(
                guardian_ok == 1,
                or_(child_ok == 1, func.coalesce(func.max(grade), 0) < from_grade),
            )
        )
    )


@functools.cache
def _one_child_statement(with_at: bool):
    """The gate for one child, built once with bound parameters (a page asks often)."""
    gate = consented_child_ids(
        bindparam("purpose_code", type_=String()),
        bindparam("at") if with_at else None,
        only_child_id=bindparam("child_id", type_=Integer()),
    ).subquery()
    return select(literal(1)).select_from(gate).limit(1)


def is_consented(session: Session, child_id: int, purpose_code: str, at: datetime | None = None) -> bool:
    """Whether one child has effective consent for a purpose (now, or at ``at``)."""
    params = {"purpose_code": purpose_code, "child_id": child_id}
    if at is not None:
        params["at"] = at
    return session.scalar(_one_child_statement(at is not None), params) is not None


def child_consent_required(session: Session, child_id: int, purpose: ConsentPurpose) -> bool:
    """Whether the child's own consent is needed for this purpose (by current grade)."""
    grade = session.scalar(
        select(SchoolClass.grade)
        .join(Enrolment, Enrolment.class_id == SchoolClass.id)
        .where(Enrolment.child_id == child_id, Enrolment.school_year_id == current_year_id_subquery())
    )
    return grade is not None and grade >= purpose.child_from_grade
