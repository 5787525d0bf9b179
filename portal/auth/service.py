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
from sqlalchemy import or_, select, update
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


# -- throttling: a delay that grows, never a lockout ------------------------------
#
# Every account (staff, guardian, student) keeps ``failed_logins`` (failures
# since its last success) and ``login_not_before``. After n failures no
# attempt is even considered for min(2**(n-1), MAX_DELAY) seconds: an attacker
# gets a few guesses a minute, and the person, who knows their PIN, waits at
# most half a minute (and a teacher can clear a pupil's delay at once). An
# attempt first claims the account with one guarded UPDATE (``WHERE
# login_not_before IS NULL OR login_not_before <= now``): parallel guesses do
# not all get checked, only the one that won the claim. A refused attempt
# gets exactly the answer of a wrong one, so nothing tells an unknown account
# from a delayed one. The server never sleeps: it refuses.
#
# So that a stranger's guesses cannot keep the person out (one guess every
# 30 seconds would hold the delay closed), a browser the account has signed
# in on before (a signed "known browser" cookie, see auth.views) is delayed
# apart: its attempts wait on ``trusted_not_before``, which only attempts from
# such a browser set. Both share the failure count, so neither path is
# faster than the other for guessing.

MAX_DELAY = 30  # seconds


def delay_after(failures: int, cap: int = MAX_DELAY) -> int:
    """Seconds before the next attempt is considered, after ``failures`` failures."""
    if failures <= 0:
        return 0
    return min(cap, 2 ** min(failures - 1, 16))


def _gate(obj, known: bool):
    """The column an attempt waits on: the known browser's own, or everyone else's."""
    return type(obj).trusted_not_before if known else type(obj).login_not_before


def _claim_attempt(session: Session, obj, now: datetime, cap: int, known: bool = False) -> bool:
    """Take the account's next attempt (False: still delayed, or another attempt holds it).

    The claim holds the account for the delay the attempt would cause if it
    fails; success releases it (:func:`_register_success`). On PostgreSQL the
    UPDATE also locks the row until commit, so the counters read after it are
    current.
    """
    model, gate = type(obj), _gate(obj, known)
    hold = now + timedelta(seconds=max(1, delay_after((obj.failed_logins or 0) + 1, cap)))
    won = session.execute(
        update(model)
        .where(model.id == obj.id, or_(gate.is_(None), gate <= now))
        .values({gate.key: hold})
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.refresh(obj, ["failed_logins", "login_not_before", "trusted_not_before"])
    return won


def _register_failure(obj, now: datetime, cap: int, known: bool = False) -> int:
    obj.failed_logins = (obj.failed_logins or 0) + 1
    setattr(obj, _gate(obj, known).key, now + timedelta(seconds=delay_after(obj.failed_logins, cap)))
    return obj.failed_logins


def _release(obj, known: bool) -> None:
    setattr(obj, _gate(obj, known).key, None)


def _register_success(obj) -> None:
    obj.failed_logins = 0
    obj.login_not_before = None
    obj.trusted_not_before = None


def is_delayed(obj, now: datetime | None = None) -> bool:
    """Whether attempts must wait now (from unknown browsers, or from the account's known ones)."""
    now = now or utcnow()
    return any(t is not None and t > now for t in (obj.login_not_before, obj.trusted_not_before))


# Staff are told by e-mail when their account is being guessed: once when the
# failures since their last sign-in reach this, and again every GUESS_ALERT_AGAIN.
GUESS_ALERT_AFTER = 5
GUESS_ALERT_AGAIN = 100


def _guess_alert_due(failures: int) -> bool:
    return failures == GUESS_ALERT_AFTER or (failures > GUESS_ALERT_AFTER and failures % GUESS_ALERT_AGAIN == 0)


@dataclass
class SignInResult:
    ok: bool
    reason: str = ""  # "invalid" (wrong, unknown or delayed: one answer), "totp_required", "totp_setup"
    obj: object | None = None
    alert_staff: Staff | None = None  # send this staff member the "someone is guessing" e-mail


# -- staff ------------------------------------------------------------------


def staff_check_password(
    session: Session, email: str, password: str, *, max_delay: int = MAX_DELAY, now: datetime | None = None,
    known: frozenset = frozenset(),
) -> SignInResult:
    """First step of a staff sign-in. Success means 'now ask for the TOTP code'.

    Unknown, inactive, wrong and delayed all answer "invalid", at the same cost.
    ``known``: the (kind, id) pairs this browser has signed in as before.
    """
    now = now or utcnow()
    staff = session.scalar(select(Staff).where(Staff.email == email.strip().lower()))
    here = staff is not None and ("staff", staff.id) in known
    if staff is None or not staff.active or not _claim_attempt(session, staff, now, max_delay, here):
        verify_password(None, password)  # same cost as a real check
        return SignInResult(False, "invalid")
    if not verify_password(staff.password_hash, password):
        failures = _register_failure(staff, now, max_delay, here)
        session.flush()
        return SignInResult(False, "invalid", alert_staff=staff if _guess_alert_due(failures) else None)
    _release(staff, here)  # the TOTP step may follow at once; failures count on
    if needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    session.flush()
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
    max_delay: int = MAX_DELAY,
    now: datetime | None = None,
    known: frozenset = frozenset(),
) -> SignInResult:
    """Second step: a 6-digit code, valid once (a replayed code is refused).

    The code's time step is consumed by one guarded UPDATE (``WHERE
    totp_last_step < step``): of simultaneous sign-ins with one code, only
    the one whose UPDATE changed the row passes.
    """
    now = now or utcnow()
    here = ("staff", staff.id) in known
    if not _claim_attempt(session, staff, now, max_delay, here):
        return SignInResult(False, "invalid")
    secret = secret or totp_secret(staff)
    code = "".join(ch for ch in code if ch.isdigit())
    totp = pyotp.TOTP(secret)
    matched_step = None
    for offset in (-1, 0, 1):  # one step of clock drift either way
        at = now + timedelta(seconds=30 * offset)
        if len(code) == 6 and hmac.compare_digest(totp.at(at), code):
            matched_step = int(at.timestamp()) // 30
            break
    if matched_step is None or not _consume_totp_step(session, staff, matched_step):
        failures = _register_failure(staff, now, max_delay, here)
        session.flush()
        return SignInResult(False, "invalid", alert_staff=staff if _guess_alert_due(failures) else None)
    _register_success(staff)
    staff.last_login_at = now
    session.flush()
    return SignInResult(True, "", staff)


def _consume_totp_step(session: Session, staff: Staff, step: int) -> bool:
    """Record ``step`` as used, if no later or equal step was: one statement, its row count."""
    used = session.execute(
        update(Staff)
        .where(Staff.id == staff.id, or_(Staff.totp_last_step.is_(None), Staff.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    session.refresh(staff, ["totp_last_step"])
    return used


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
    session: Session, email: str, password: str, *, max_delay: int = MAX_DELAY, now: datetime | None = None,
    known: frozenset = frozenset(),
) -> SignInResult:
    """Unknown, wrong and delayed all answer "invalid", at the same cost."""
    now = now or utcnow()
    guardian = session.scalar(select(Guardian).where(Guardian.email == email.strip().lower()))
    here = guardian is not None and ("guardian", guardian.id) in known
    if guardian is None or guardian.password_hash is None or not _claim_attempt(session, guardian, now, max_delay, here):
        verify_password(None, password)
        return SignInResult(False, "invalid")
    if not verify_password(guardian.password_hash, password):
        _register_failure(guardian, now, max_delay, here)
        session.flush()
        return SignInResult(False, "invalid")
    if needs_rehash(guardian.password_hash):
        guardian.password_hash = hash_password(password)
    _register_success(guardian)
    session.flush()
    return SignInResult(True, "", guardian)


def set_guardian_password(guardian: Guardian, password: str) -> None:
    guardian.password_hash = hash_password(password)
    guardian.session_version += 1  # other sessions end
    guardian.failed_logins = 0
    guardian.login_not_before = None


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
    child.card_last_used_at = None
    child.card_revoked_at = None
    return token


def revoke_card(child: Child, now: datetime | None = None) -> bool:
    """The child's card stops working at once (False: there was no card to revoke)."""
    if child.card_token_digest is None:
        return False
    child.card_token_digest = None
    child.card_revoked_at = now or utcnow()
    return True


def clear_delay(child: Child) -> bool:
    """A teacher lets a pupil try again at once (False: nothing was delayed)."""
    had = bool(child.failed_logins) or child.login_not_before is not None or child.trusted_not_before is not None
    _register_success(child)
    return had


def _normalise_student_no(student_no: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", student_no) if ch.isalnum())


def student_check_pin(
    session: Session, student_no: str, pin: str, *, max_delay: int = MAX_DELAY, now: datetime | None = None,
    known: frozenset = frozenset(),
) -> SignInResult:
    """Unknown number, wrong PIN and a delayed child all answer "invalid", at the same cost."""
    now = now or utcnow()
    child = session.scalar(select(Child).where(Child.student_no == _normalise_student_no(student_no)))
    here = child is not None and ("student", child.id) in known
    if child is None or child.pin_hash is None or not _claim_attempt(session, child, now, max_delay, here):
        verify_password(None, pin)
        return SignInResult(False, "invalid")
    if not verify_password(child.pin_hash, pin.strip()):
        _register_failure(child, now, max_delay, here)
        session.flush()
        return SignInResult(False, "invalid")
    if needs_rehash(child.pin_hash):
        child.pin_hash = hash_password(pin.strip())
    _register_success(child)
    session.flush()
    return SignInResult(True, "", child)


def student_check_card(
    session: Session, secret_key: str, token: str, *, now: datetime | None = None, known: frozenset = frozenset()
) -> SignInResult:
    """Sign in with the QR card's token (POSTed, never from a URL the server sees).

    One guarded UPDATE both checks and records the use: the card must still
    be the child's current card (not revoked, not replaced) and the child
    not delayed by wrong PINs, at the moment of the statement. A card does not
    clear the PIN's delay or failures: only the right PIN does.
    """
    now = now or utcnow()
    token = token.strip()
    if not token:
        return SignInResult(False, "invalid")
    digest = card_digest(secret_key, token)
    child_id = session.scalar(select(Child.id).where(Child.card_token_digest == digest))
    if child_id is None:
        return SignInResult(False, "invalid")
    gate = Child.trusted_not_before if ("student", child_id) in known else Child.login_not_before
    used = session.execute(
        update(Child)
        .where(
            Child.id == child_id,
            Child.card_token_digest == digest,
            or_(gate.is_(None), gate <= now),
        )
        .values(card_last_used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount == 1
    if not used:
        return SignInResult(False, "invalid")
    child = session.get(Child, child_id)
    session.refresh(child, ["card_last_used_at"])
    return SignInResult(True, "", child)
