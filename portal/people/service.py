"""Operations on people: look-ups the pages share, and small updates."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.principal import Principal
from portal.people.models import (
    Child,
    Enrolment,
    Guardian,
    GuardianChild,
    School,
    SchoolClass,
    SchoolYear,
    Staff,
)


def save_locale(session: Session, principal: Principal, locale: str) -> None:
    model = {"staff": Staff, "guardian": Guardian, "student": Child}[principal.kind]
    obj = session.get(model, principal.id)
    obj.locale = locale
    session.flush()


def current_school_year(session: Session) -> SchoolYear | None:
    return session.scalar(select(SchoolYear).where(SchoolYear.is_current.is_(True)))


def children_of_guardian(session: Session, guardian_id: int) -> list[tuple[Child, SchoolClass | None, School | None]]:
    """A guardian's children with their current class and school, in one query."""
    year = select(SchoolYear.id).where(SchoolYear.is_current.is_(True)).scalar_subquery()
    rows = session.execute(
        select(Child, SchoolClass, School)
        .join(GuardianChild, GuardianChild.child_id == Child.id)
        .outerjoin(Enrolment, (Enrolment.child_id == Child.id) & (Enrolment.school_year_id == year))
        .outerjoin(SchoolClass, SchoolClass.id == Enrolment.class_id)
        .outerjoin(School, School.id == SchoolClass.school_id)
        .where(GuardianChild.guardian_id == guardian_id)
        .order_by(Child.birth_date)
    ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def current_class_of(session: Session, child_id: int) -> SchoolClass | None:
    year = select(SchoolYear.id).where(SchoolYear.is_current.is_(True)).scalar_subquery()
    return session.scalar(
        select(SchoolClass)
        .join(Enrolment, Enrolment.class_id == SchoolClass.id)
        .where(Enrolment.child_id == child_id, Enrolment.school_year_id == year)
    )


def grade_of(session: Session, child_id: int) -> int | None:
    cls = current_class_of(session, child_id)
    return cls.grade if cls else None
