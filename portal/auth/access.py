"""The one place where access is decided.

Two questions, both answered here and nowhere else:

1. *May this role use this route?* Every view declares its roles with
   :func:`allow` (or :func:`public`). A route with no declaration is denied
   (default deny), and ``tests/test_access_matrix.py`` walks every route for
   every role against a table, so a new route without a rule fails.
2. *May this person see this child?* :func:`visible_child_ids` returns a
   query of the child ids a principal may see individually; every page and
   service that reads a child's record narrows by it (or calls
   :func:`child_or_404`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps

from flask import abort
from sqlalchemy import Select, false, literal, select
from sqlalchemy.orm import Session

from portal.auth.principal import Principal
from portal.people.models import (
    Child,
    Enrolment,
    GuardianChild,
    Role,
    SchoolClass,
    SchoolYear,
    StaffScope,
)

ANONYMOUS = "anonymous"
GUARDIAN = "guardian"
# A family account whose e-mail address is not proven yet: signed in, but
# allowed only the "check your e-mail" page (and public ones); it is no
# GUARDIAN for any route, and visible_child_ids gives it no child.
UNCONFIRMED_GUARDIAN = "guardian_unconfirmed"
STUDENT = "student"
STAFF_ROLES: tuple[str, ...] = tuple(r.value for r in Role)
FAMILY_ROLES: tuple[str, ...] = (GUARDIAN, STUDENT)
ALL_ROLES: tuple[str, ...] = (ANONYMOUS, GUARDIAN, UNCONFIRMED_GUARDIAN, STUDENT, *STAFF_ROLES)
SIGNED_IN: tuple[str, ...] = (GUARDIAN, UNCONFIRMED_GUARDIAN, STUDENT, *STAFF_ROLES)

# Staff whose work is about individual children in schools.
SCHOOL_STAFF: tuple[str, ...] = (
    Role.teacher.value,
    Role.school_lead.value,
    Role.counsellor.value,
    Role.social_worker.value,
)
# Roles that may see some child's record at all (need TOTP, audited reads).
CHILD_DATA_ROLES: tuple[str, ...] = (*SCHOOL_STAFF, Role.data_steward.value)

_ATTR = "_mimamori_roles"


def allow(*roles: str | Iterable[str]) -> Callable:
    """Declare which roles may use a view; everyone else gets 403 (or sign-in)."""
    flat: set[str] = set()
    for r in roles:
        if isinstance(r, str):
            flat.add(r)
        else:
            flat.update(r)
    unknown = flat - set(ALL_ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    allowed = frozenset(flat)

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            return view(*args, **kwargs)

        setattr(wrapped, _ATTR, allowed)
        return wrapped

    return decorate


def public(view: Callable) -> Callable:
    """A view anyone may use, signed in or not."""
    return allow(*ALL_ROLES)(view)


def roles_for(view: Callable | None) -> frozenset[str] | None:
    """The roles a view allows, or None when it declares none (denied)."""
    if view is None:
        return None
    return getattr(view, _ATTR, None)


def role_of(user) -> str:
    return getattr(user, "role", ANONYMOUS) if getattr(user, "is_authenticated", False) else ANONYMOUS


def check_route(view: Callable | None, user) -> str:
    """'ok', 'login' (sign in first) or 'deny' for this user on this view."""
    allowed = roles_for(view)
    if allowed is None:
        return "deny"
    role = role_of(user)
    if role in allowed:
        return "ok"
    if role == ANONYMOUS:
        return "login"
    return "deny"


# -- scopes ---------------------------------------------------------------


def current_year_id_subquery():
    return select(SchoolYear.id).where(SchoolYear.is_current.is_(True)).scalar_subquery()


def visible_child_ids(principal: Principal) -> Select:
    """A SELECT of the child ids this principal may see individually.

    It is meant to be joined or used with ``.in_()``, so a list page narrows
    in one query whatever the number of children.
    """
    role = principal.role
    if role == GUARDIAN:
        return select(GuardianChild.child_id).where(GuardianChild.guardian_id == principal.id)
    if role == STUDENT:
        return select(literal(principal.id).label("child_id"))
    if role == Role.teacher.value:
        return (
            select(Enrolment.child_id)
            .join(SchoolClass, SchoolClass.id == Enrolment.class_id)
            .where(
                SchoolClass.homeroom_teacher_id == principal.id,
                Enrolment.school_year_id == current_year_id_subquery(),
            )
        )
    if role in (Role.school_lead.value, Role.counsellor.value, Role.social_worker.value):
        return (
            select(Enrolment.child_id)
            .join(SchoolClass, SchoolClass.id == Enrolment.class_id)
            .join(StaffScope, StaffScope.school_id == SchoolClass.school_id)
            .where(
                StaffScope.staff_id == principal.id,
                Enrolment.school_year_id == current_year_id_subquery(),
            )
        )
    if role == Role.data_steward.value:
        return select(Child.id)
    # coordinator, analyst, administrator, anonymous, system: no individual child
    return select(Child.id).where(false())


def visible_school_ids(principal: Principal) -> Select:
    """Schools whose records (cases, meetings, registers) this principal may see."""
    from portal.people.models import School

    if principal.role in (Role.school_lead.value, Role.counsellor.value, Role.social_worker.value, Role.teacher.value):
        return select(StaffScope.school_id).where(StaffScope.staff_id == principal.id)
    if principal.role in (Role.data_steward.value, Role.coordinator.value):
        return select(School.id)
    return select(School.id).where(false())


def can_see_child(session: Session, principal: Principal, child_id: int) -> bool:
    q = visible_child_ids(principal).subquery()
    return session.scalar(select(literal(1)).select_from(q).where(q.c[0] == child_id).limit(1)) is not None


def child_or_404(session: Session, principal: Principal, child_id: int) -> Child:
    """The child, if this principal may see it; otherwise 404 (never reveal that it exists)."""
    child = session.get(Child, child_id)
    if child is None or not can_see_child(session, principal, child_id):
        abort(404)
    return child
