"""Sign-in operations for staff, guardians and students.

Plain functions over a session; the views call them and commit. Failures
return a reason code, never a hint about which part was wrong, so nothing
reveals whether an account or a code exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto
from portal.auth.passwords import hash_password, needs_rehash, verify_password
from portal.auth.principal import Principal
from portal.orm import utcnow
from portal.people.models import (
    Child,
    EnrolmentCode,
    Guardian,
    GuardianChild,
    Staff,
    StaffScope,
)

# Enrolment codes: 12 characters from an alphabet without look-alikes,
# printed as XXXX-XXXX-XXXX.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def principal_for(obj) -> Principal:
    if isinstance(obj, Staff):
        return Principal(
            "staff", obj.id, obj.role.value, obj.locale, obj.session_version,
            tuple(s.school_id for s in obj.scopes),
        )
    if isinstance(obj, Guardian):
        return Principal("guardian", obj.id, "guardian", obj.locale, obj.session_version)
    if isinstance(obj, Child):
        return Principal("student", obj.id, "student", obj.locale, obj.session_version)
    raise TypeError(obj)


def load_principal(session: Session, user_id: str) -> Principal | None:
    """Flask-Login's loader: 'kind:id:version'; a stale version signs out."""
    try:
        kind, raw_id, version = user_id.split(":")
        pk = int(raw_id)
        ver = int(version)
    except ValueError:
        return None
    # Runs on every signed-in request: one query for just the columns a
    # Principal needs (staff: joined with their school scopes), no ORM objects.
    if kind == "staff":
        rows = session.execute(
            select(Staff.role, Staff.locale, Staff.session_version, Staff.active, StaffScope.school_id)
            .outerjoin(StaffScope, StaffScope.staff_id == Staff.id)
            .where(Staff.id == pk)
            .order_by(StaffScope.id)
        ).all()
        if not rows or rows[0].session_version != ver or not rows[0].active:
            return None
        schools = tuple(r.school_id for r in rows if r.school_id is not None)
        return Principal("staff", pk, rows[0].role.value, rows[0].locale, ver, schools)
    model = {"guardian": Guardian, "student": Child}.get(kind)
    if model is None:
        return None
    row = session.execute(select(model.locale, model.session_version).where(model.id == pk)).first()
    if row is None or row.session_version != ver:
        return None
    return Principal(kind, pk, kind, row.locale, ver)


def end_sessions(session: Session, principal: Principal) -> None:
    """Sign-out: every session cookie issued to this account stops working.

    Sessions are signed cookies, so a copy of one (a shared tablet, a stolen
    cookie) would otherwise stay valid after sign-out; bumping the version
    makes :func:`load_principal` refuse them all.
    """
    model = {"staff": Staff, "guardian": Guardian, "student": Child}.get(principal.kind)
    obj = session.get(model, principal.id) if model else None
    if obj is not None:
        obj.session_version = (obj.session_version or 1) + 1
        session.flush()


# -- lockout ----------------------------------------------------------------


def _is_locked(obj, now: datetime) -> bool:
    return obj.locked_until is not None and obj.locked_until > now


def _register_failure(obj, now: datetime, max_failures: int, lock_minutes: int) -> None:
    obj.failed_logins = (obj.failed_logins or 0) + 1
    if obj.failed_logins >= max_failures:
        obj.locked_until = now + timedelta(minutes=lock_minutes)
        obj.failed_logins = 0


def _register_success(obj) -> None:
    obj.failed_logins = 0
    obj.locked_until = None


@dataclass
class SignInResult:
    ok: bool
    reason: str = ""  # "invalid", "locked", "totp_required", "totp_setup"
    obj: object | None = None


# -- staff ------------------------------------------------------------------


def staff_check_password(
    session: Session, email: str, password: str, *, max_failures: int = 5, lock_minutes: int = 15
) -> SignInResult:
    """First step of a staff sign-in. Success means 'now ask for the TOTP code'."""
    now = utcnow()
    staff = session.scalar(select(Staff).where(Staff.email == email.strip().lower()))
    if staff is None or not staff.active:
        verify_password(None, password)  # same cost as a real check
        return SignInResult(False, "invalid")
    if _is_locked(staff, now):
        return SignInResult(False, "locked")
    if not verify_password(staff.password_hash, password):
        _register_failure(staff, now, max_failures, lock_minutes)
        session.flush()
        return SignInResult(False, "locked" if _is_locked(staff, now) else "invalid")
    if needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    if staff.totp_secret_enc is None:
        return SignInResult(True, "totp_setup", staff)
    return SignInResult(True, "totp_required", staff)


def new_totp_secret() -> str:
    return pyotp.random_base32()


def set_totp_secret(staff: Staff, secret: str) -> None:
    staff.totp_secret_enc = crypto.encrypt(secret)
    staff.totp_last_step = None


def totp_secret(staff: Staff) -> str | None:
    return crypto.decrypt(staff.totp_secret_enc) if staff.totp_secret_enc else None


def totp_uri(staff: Staff, secret: str, issuer: str = "Mimamori") -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=staff.email, issuer_name=issuer)


def staff_check_totp(
    session: Session,
    staff: Staff,
    code: str,
    *,
    secret: str | None = None,
    max_failures: int = 5,
    lock_minutes: int = 15,
    now: datetime | None = None,
) -> SignInResult:
    """Second step: a 6-digit code, valid once (a replayed code is refused)."""
    now = now or utcnow()
    if _is_locked(staff, now):
        return SignInResult(False, "locked")
    secret = secret or totp_secret(staff)
    code = "".join(ch for ch in code if ch.isdigit())
    totp = pyotp.TOTP(secret)
    matched_step = None
    for offset in (-1, 0, 1):  # one step of clock drift either way
        at = now + timedelta(seconds=30 * offset)
        if len(code) == 6 and hmac.compare_digest(totp.at(at), code):
            matched_step = int(at.timestamp()) // 30
            break
    if matched_step is None or (staff.totp_last_step is not None and matched_step <= staff.totp_last_step):
        _register_failure(staff, now, max_failures, lock_minutes)
        session.flush()
        return SignInResult(False, "locked" if _is_locked(staff, now) else "invalid")
    staff.totp_last_step = matched_step
    _register_success(staff)
    staff.last_login_at = now
    session.flush()
    return SignInResult(True, "", staff)


# -- guardians ----------------------------------------------------------------


def code_digest(secret_key: str, code: str) -> str:
    normalised = "".join(ch for ch in unicodedata.normalize("NFKC", code).upper() if ch.isalnum())
    return hmac.new(secret_key.encode(), normalised.encode(), hashlib.sha256).hexdigest()


def format_code(raw: str) -> str:
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def issue_enrolment_code(
    session: Session, secret_key: str, child: Child, *, days: int = 60, now: datetime | None = None
) -> str:
    """Issue a new one-time code for a child's letter; returns it for printing only."""
    now = now or utcnow()
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(12))
    session.add(
        EnrolmentCode(
            child_id=child.id,
            code_digest=code_digest(secret_key, raw),
            expires_at=now + timedelta(days=days),
            created_at=now,
        )
    )
    session.flush()
    return format_code(raw)


def find_usable_code(session: Session, secret_key: str, code: str, now: datetime | None = None):
    """The code's row if it exists, is unused and unexpired; else None (no reason given)."""
    now = now or utcnow()
    row = session.scalar(select(EnrolmentCode).where(EnrolmentCode.code_digest == code_digest(secret_key, code)))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def redeem_code_for_guardian(
    session: Session, secret_key: str, code: str, guardian: Guardian, *, relationship: str = "parent"
) -> Child | None:
    """Link the code's child to an existing guardian account (adding a child)."""
    row = find_usable_code(session, secret_key, code)
    if row is None:
        return None
    now = utcnow()
    row.used_at = now
    row.used_by_guardian_id = guardian.id
    link = session.scalar(
        select(GuardianChild).where(GuardianChild.guardian_id == guardian.id, GuardianChild.child_id == row.child_id)
    )
    if link is None:
        session.add(GuardianChild(guardian_id=guardian.id, child_id=row.child_id, relationship_=relationship))
    session.flush()
    return session.get(Child, row.child_id)


def register_guardian(
    session: Session,
    secret_key: str,
    code: str,
    *,
    name: str,
    email: str,
    password: str,
    locale: str,
    relationship: str = "parent",
) -> Guardian | None:
    """Create a guardian account from an enrolment code. None if the code is unusable.

    When the school already knew this guardian (same e-mail, no account yet),
    that record becomes the account.
    """
    row = find_usable_code(session, secret_key, code)
    if row is None:
        return None
    email = email.strip().lower()
    existing = session.scalar(select(Guardian).where(Guardian.email == email))
    if existing is not None and existing.password_hash is not None:
        return None
    guardian = existing or Guardian(name=name, email=email)
    guardian.name = name
    guardian.password_hash = hash_password(password)
    guardian.locale = locale
    guardian.registered_at = utcnow()
    session.add(guardian)
    session.flush()
    redeem_code_for_guardian(session, secret_key, code, guardian, relationship=relationship)
    return guardian


def email_in_use(session: Session, email: str) -> bool:
    return session.scalar(
        select(Guardian.id).where(Guardian.email == email.strip().lower(), Guardian.password_hash.is_not(None))
    ) is not None


def guardian_check_password(
    session: Session, email: str, password: str, *, max_failures: int = 5, lock_minutes: int = 15
) -> SignInResult:
    now = utcnow()
    guardian = session.scalar(select(Guardian).where(Guardian.email == email.strip().lower()))
    if guardian is None or guardian.password_hash is None:
        verify_password(None, password)
        return SignInResult(False, "invalid")
    if _is_locked(guardian, now):
        return SignInResult(False, "locked")
    if not verify_password(guardian.password_hash, password):
        _register_failure(guardian, now, max_failures, lock_minutes)
        session.flush()
        return SignInResult(False, "locked" if _is_locked(guardian, now) else "invalid")
    if needs_rehash(guardian.password_hash):
        guardian.password_hash = hash_password(password)
    _register_success(guardian)
    session.flush()
    return SignInResult(True, "", guardian)


def set_guardian_password(guardian: Guardian, password: str) -> None:
    guardian.password_hash = hash_password(password)
    guardian.session_version += 1  # other sessions end
    guardian.failed_logins = 0
    guardian.locked_until = None


# -- students -----------------------------------------------------------------


def set_student_pin(child: Child, pin: str) -> None:
    child.pin_hash = hash_password(pin)
    child.session_version += 1


def new_pin() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def card_digest(secret_key: str, token: str) -> str:
    return hmac.new(secret_key.encode(), b"card:" + token.encode(), hashlib.sha256).hexdigest()


def issue_card_token(child: Child, secret_key: str) -> str:
    """A new QR card token for the child (the old card stops working)."""
    token = secrets.token_urlsafe(24)
    child.card_token_digest = card_digest(secret_key, token)
    return token


def student_check_pin(
    session: Session, student_no: str, pin: str, *, max_failures: int = 5, lock_minutes: int = 15
) -> SignInResult:
    now = utcnow()
    student_no = "".join(ch for ch in unicodedata.normalize("NFKC", student_no) if ch.isalnum())
    child = session.scalar(select(Child).where(Child.student_no == student_no))
    if child is None or child.pin_hash is None:
        verify_password(None, pin)
        return SignInResult(False, "invalid")
    if _is_locked(child, now):
        return SignInResult(False, "locked")
    if not verify_password(child.pin_hash, pin.strip()):
        _register_failure(child, now, max_failures, lock_minutes)
        session.flush()
        return SignInResult(False, "locked" if _is_locked(child, now) else "invalid")
    if needs_rehash(child.pin_hash):
        child.pin_hash = hash_password(pin.strip())
    _register_success(child)
    session.flush()
    return SignInResult(True, "", child)


def student_check_card(session: Session, secret_key: str, token: str) -> SignInResult:
    child = session.scalar(select(Child).where(Child.card_token_digest == card_digest(secret_key, token.strip())))
    if child is None:
        return SignInResult(False, "invalid")
    return SignInResult(True, "", child)
