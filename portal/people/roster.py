"""Classes a member of school staff manages, and who is in them.

A teacher manages the classes they are homeroom teacher of; a school lead
manages every class of the schools in their scope; nobody else manages a
class. Only the current school year counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session

from portal.auth.access import current_year_id_subquery
from portal.auth.principal import Principal
from portal.people.models import (
    Child,
    Enrolment,
    Guardian,
    GuardianChild,
    Role,
    School,
    SchoolClass,
    StaffScope,
)

CLASS_MANAGERS = (Role.teacher.value, Role.school_lead.value)


def manageable_class_ids(principal: Principal) -> Select:
    """A SELECT of the ids of current-year classes this principal manages."""
    year = current_year_id_subquery()
    if principal.role == Role.teacher.value:
        return select(SchoolClass.id).where(
            SchoolClass.homeroom_teacher_id == principal.id, SchoolClass.school_year_id == year
        )
    if principal.role == Role.school_lead.value:
        return (
            select(SchoolClass.id)
            .join(StaffScope, StaffScope.school_id == SchoolClass.school_id)
            .where(StaffScope.staff_id == principal.id, SchoolClass.school_year_id == year)
        )
    return select(SchoolClass.id).where(false())


def class_for(session: Session, principal: Principal, class_id: int) -> SchoolClass | None:
    """The class if this principal manages it, else None (the page answers 404)."""
    return session.scalar(
        select(SchoolClass).where(SchoolClass.id == class_id, SchoolClass.id.in_(manageable_class_ids(principal)))
    )


@dataclass
class ClassRow:
    school_class: SchoolClass
    school: School
    children: int
    without_account: int


def _registered_family() -> Select:
    """Child ids with at least one guardian who has an account (its address proven).

    An account whose address is not confirmed yet does not count: it cannot
    see the child, and whoever made it may not be the family.
    """
    return (
        select(GuardianChild.child_id)
        .join(Guardian, Guardian.id == GuardianChild.guardian_id)
        .where(Guardian.password_hash.is_not(None), Guardian.email_confirmed_at.is_not(None))
    )


def manageable_classes(session: Session, principal: Principal) -> list[ClassRow]:
    """The classes with their size and how many families have no account yet (counts only)."""
    registered = _registered_family().subquery()
    rows = session.execute(
        select(
            SchoolClass,
            School,
            func.count(Enrolment.id),
            func.count(Enrolment.id).filter(Enrolment.child_id.not_in(select(registered.c.child_id))),
        )
        .join(School, School.id == SchoolClass.school_id)
        .outerjoin(Enrolment, (Enrolment.class_id == SchoolClass.id) & (Enrolment.school_year_id == SchoolClass.school_year_id))
        .where(SchoolClass.id.in_(manageable_class_ids(principal)))
        .group_by(SchoolClass.id, School.id)
        .order_by(School.code, SchoolClass.grade, SchoolClass.name)
    ).all()
    return [ClassRow(r[0], r[1], int(r[2]), int(r[3])) for r in rows]


def _class_children(school_class: SchoolClass) -> Select:
    return (
        select(Child)
        .join(Enrolment, Enrolment.child_id == Child.id)
        .where(Enrolment.class_id == school_class.id, Enrolment.school_year_id == school_class.school_year_id)
        .order_by(Enrolment.attendance_no, Child.name_kana, Child.id)
    )


def children_of_class(session: Session, school_class: SchoolClass) -> list[Child]:
    """The class's children in attendance-number order."""
    return list(session.scalars(_class_children(school_class)))


def children_without_account(session: Session, school_class: SchoolClass) -> list[Child]:
    """The class's children whose family has no registered account, in one query."""
    return list(session.scalars(_class_children(school_class).where(Child.id.not_in(_registered_family()))))
