"""Staff accounts, managed by the administrator.

Every change is audited (ids, roles and school ids only). Passwords set here
are temporary: shown once to the administrator, and the staff member must
choose their own at the next sign-in. The administrator never sees a
child's data: nothing here reads a child.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from portal import once
from portal.audit import service as audit
from portal.auth.passwords import hash_password, verify_password
from portal.auth.principal import Principal
from portal.people.models import Role, School, SchoolClass, Staff, StaffScope

# Roles whose work is in particular schools: they need at least one school.
SCHOOL_ROLES = frozenset({Role.teacher, Role.school_lead, Role.counsellor, Role.social_worker})
TEMP_PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # noqa: S105 (an alphabet, not a password)


class StaffError(ValueError):
    """A change that cannot be made; ``code`` says why (the page words it)."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def temporary_password() -> str:
    """16 characters without look-alikes, in groups of four (about 80 bits)."""
    raw = "".join(secrets.choice(TEMP_PASSWORD_ALPHABET) for _ in range(16))
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


@dataclass
class StaffPage:
    rows: list[Staff]
    total: int


def list_staff(
    session: Session, *, query: str = "", role: str | None = None, active: bool | None = None,
    limit: int = 50, offset: int = 0,
) -> StaffPage:
    q = select(Staff)
    if query:
        like = f"%{query.strip().lower()}%"
        q = q.where(or_(func.lower(Staff.email).like(like), func.lower(Staff.name).like(like)))
    if role:
        q = q.where(Staff.role == Role(role))
    if active is not None:
        q = q.where(Staff.active.is_(active))
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(
        q.order_by(Staff.active.desc(), Staff.role, Staff.name, Staff.id).limit(limit).offset(offset)
        .options(selectinload(Staff.scopes).selectinload(StaffScope.school))  # the list shows each one's schools
    ).all()
    return StaffPage(list(rows), int(total))


def _check_scopes(session: Session, role: Role, school_ids: list[int]) -> list[int]:
    school_ids = sorted(set(school_ids))
    if role in SCHOOL_ROLES and not school_ids:
        raise StaffError("school_required")
    if role not in SCHOOL_ROLES:
        return []  # municipality-wide roles hold no school scope
    found = set(session.scalars(select(School.id).where(School.id.in_(school_ids))))
    if found != set(school_ids):
        raise StaffError("unknown_school")
    return school_ids


def _check_classes(session: Session, role: Role, school_ids: list[int], class_ids: list[int]) -> list[int]:
    class_ids = sorted(set(class_ids))
    if role != Role.teacher:
        return []
    if class_ids:
        ok = set(session.scalars(select(SchoolClass.id).where(
            SchoolClass.id.in_(class_ids), SchoolClass.school_id.in_(school_ids))))
        if ok != set(class_ids):
            raise StaffError("class_outside_schools")
    return class_ids


def _active_admins(session: Session) -> int:
    return session.scalar(
        select(func.count(Staff.id)).where(Staff.role == Role.administrator, Staff.active.is_(True))
    ) or 0


def _set_homerooms(session: Session, staff: Staff, class_ids: list[int]) -> None:
    """Make ``staff`` the homeroom teacher of exactly these classes."""
    wanted = set(class_ids)
    current = session.scalars(select(SchoolClass).where(
        or_(SchoolClass.homeroom_teacher_id == staff.id, SchoolClass.id.in_(wanted or [-1])))).all()
    for cls in current:
        cls.homeroom_teacher_id = staff.id if cls.id in wanted else None
    session.flush()


def homeroom_class_ids(session: Session, staff_id: int) -> list[int]:
    return list(session.scalars(select(SchoolClass.id).where(SchoolClass.homeroom_teacher_id == staff_id)))


def create_staff(
    session: Session, admin: Principal, *, name: str, email: str, role: str, locale: str = "ja",
    school_ids: list[int] = (), class_ids: list[int] = (),
) -> tuple[Staff, str]:
    """A new staff account with a temporary password (returned, shown once)."""
    email = email.strip().lower()
    if session.scalar(select(Staff.id).where(Staff.email == email)) is not None:
        raise StaffError("email_taken")
    role_ = Role(role)
    schools = _check_scopes(session, role_, list(school_ids))
    classes = _check_classes(session, role_, schools, list(class_ids))
    password = temporary_password()
    staff = Staff(
        name=name.strip(), email=email, role=role_, locale=locale, password_hash=hash_password(password),
        password_change_required=True, active=True,
    )
    staff.scopes = [StaffScope(school_id=s) for s in schools]
    session.add(staff)
    if not once.flush_unique(session):  # the same form sent twice at once: one account
        raise StaffError("email_taken")
    _set_homerooms(session, staff, classes)
    audit.record(session, admin, "admin.staff_created",
                 detail={"staff_id": staff.id, "role": role_.value, "school_ids": schools, "class_ids": classes})
    return staff, password


def update_staff(
    session: Session, admin: Principal, staff: Staff, *, name: str, role: str, locale: str,
    school_ids: list[int] = (), class_ids: list[int] = (),
) -> None:
    role_ = Role(role)
    if staff.role == Role.administrator and role_ != Role.administrator and staff.active and _active_admins(session) <= 1:
        raise StaffError("last_admin")
    schools = _check_scopes(session, role_, list(school_ids))
    classes = _check_classes(session, role_, schools, list(class_ids))
    before = {"role": staff.role.value, "school_ids": sorted(s.school_id for s in staff.scopes)}
    staff.name = name.strip()
    staff.locale = locale
    if staff.role != role_:
        staff.role = role_
        staff.session_version += 1  # a new role starts with a fresh sign-in
    current = {s.school_id: s for s in staff.scopes}
    staff.scopes = [current.get(s) or StaffScope(school_id=s) for s in schools]
    session.flush()
    _set_homerooms(session, staff, classes)
    audit.record(session, admin, "admin.staff_updated", detail={
        "staff_id": staff.id, "before": before,
        "after": {"role": role_.value, "school_ids": schools}, "class_ids": classes,
    })


def set_active(session: Session, admin: Principal, staff: Staff, active: bool) -> None:
    if not active:
        if staff.id == admin.id and admin.kind == "staff":
            raise StaffError("self")
        if staff.role == Role.administrator and staff.active and _active_admins(session) <= 1:
            raise StaffError("last_admin")
    if staff.active == active:
        return
    staff.active = active
    staff.session_version += 1  # signs them out everywhere
    session.flush()
    audit.record(session, admin, "admin.staff_activated" if active else "admin.staff_deactivated",
                 detail={"staff_id": staff.id})


def reset_password(session: Session, admin: Principal, staff: Staff) -> str:
    """A new temporary password (returned once); old sessions end, the lock clears."""
    password = temporary_password()
    staff.password_hash = hash_password(password)
    staff.password_change_required = True
    staff.failed_logins = 0
    staff.login_not_before = None
    staff.session_version += 1
    session.flush()
    audit.record(session, admin, "admin.password_reset", detail={"staff_id": staff.id})
    return password


def reset_totp(session: Session, admin: Principal, staff: Staff) -> None:
    """Forget the authenticator: the staff member enrols again at the next sign-in."""
    staff.totp_secret_enc = None
    staff.totp_last_step = None
    staff.session_version += 1
    session.flush()
    audit.record(session, admin, "admin.totp_reset", detail={"staff_id": staff.id})


def change_own_password(session: Session, me: Principal, staff: Staff, current: str, new: str) -> bool:
    """A staff member chooses their own password; False when ``current`` is wrong.

    Other sessions of the account end: ``staff.session_version`` is bumped, and
    the caller signs the current session in again with the new version.
    """
    if not verify_password(staff.password_hash, current):
        return False
    old_hash, new_hash = staff.password_hash, hash_password(new)
    # Compare-and-set on the hash that was checked: of two simultaneous
    # changes with one (temporary) password only the first succeeds. Every
    # other session of the account ends (the view re-issues the current one).
    result = session.execute(
        update(Staff)
        .where(Staff.id == staff.id, Staff.password_hash == old_hash)
        .values(password_hash=new_hash, password_change_required=False, session_version=Staff.session_version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    session.refresh(staff)
    audit.record(session, me, "auth.password_changed", detail={"staff_id": staff.id})
    return True
