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
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal import crypto
from portal.audit import service as audit
from portal.auth.access import GUARDIAN, UNCONFIRMED_GUARDIAN
from portal.auth.passwords import hash_password, needs_rehash, verify_password
from portal.auth.principal import SYSTEM, Principal
from portal.orm import utcnow
from portal.people.models import (
    Child,
    EmailToken,
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
        return Principal("guardian", obj.id, guardian_role(obj.email_confirmed_at), obj.locale, obj.session_version)
    if isinstance(obj, Child):
        return Principal("student", obj.id, "student", obj.locale, obj.session_version)
    raise TypeError(obj)


def guardian_role(email_confirmed_at) -> str:
    """A family account whose address is not proven yet sees no child (auth.access)."""
    return GUARDIAN if email_confirmed_at is not None else UNCONFIRMED_GUARDIAN


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
    if kind == "guardian":
        row = session.execute(
            select(Guardian.locale, Guardian.session_version, Guardian.email_confirmed_at).where(Guardian.id == pk)
        ).first()
        if row is None or row.session_version != ver:
            return None
        return Principal(kind, pk, guardian_role(row.email_confirmed_at), row.locale, ver)
    if kind != "student":
        return None
    row = session.execute(select(Child.locale, Child.session_version).where(Child.id == pk)).first()
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


def note_sign_in(staff: Staff, now: datetime) -> None:
    """Keep the sign-in before this one: the home page shows it ("previous sign-in")."""
    staff.previous_login_at = staff.last_login_at
    staff.last_login_at = now


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
    note_sign_in(staff, now)
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
    """The code's row if it exists, is unused and unexpired; else None (no reason given).

    A look only: spending a code is :func:`consume_enrolment_code`.
    """
    now = now or utcnow()
    row = session.scalar(select(EnrolmentCode).where(EnrolmentCode.code_digest == code_digest(secret_key, code)))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def consume_enrolment_code(session: Session, secret_key: str, code: str, now: datetime | None = None):
    """Spend a code with one guarded statement; its row, or None if it was not usable.

    ``UPDATE … WHERE used_at IS NULL AND expires_at > now``: of any number of
    simultaneous requests with one code exactly one sees a row count of 1
    (on PostgreSQL the others wait for its row lock, then find it used).
    """
    now = now or utcnow()
    digest = code_digest(secret_key, code)
    result = session.execute(
        update(EnrolmentCode)
        .where(EnrolmentCode.code_digest == digest, EnrolmentCode.used_at.is_(None), EnrolmentCode.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return session.scalar(
        select(EnrolmentCode).where(EnrolmentCode.code_digest == digest).execution_options(populate_existing=True)
    )


# -- e-mail tokens ------------------------------------------------------------

# How long each kind of e-mailed link works.
TOKEN_LIFETIME = {
    "confirm": timedelta(hours=48),
    "join": timedelta(hours=48),
    "add_child": timedelta(days=7),
    "reset": timedelta(hours=1),
}
# A new confirmation link may be asked for this often, and this many times a day.
RESEND_INTERVAL = timedelta(minutes=2)
RESEND_PER_DAY = 5


def email_token_digest(secret_key: str, purpose: str, token: str) -> str:
    return hmac.new(secret_key.encode(), f"email-token:{purpose}:{token}".encode(), hashlib.sha256).hexdigest()


def issue_email_token(
    session: Session,
    secret_key: str,
    guardian_id: int,
    purpose: str,
    *,
    child_id: int | None = None,
    code_id: int | None = None,
    relationship: str | None = None,
    now: datetime | None = None,
    supersede: bool = True,
) -> str:
    """A new single-use link token (returned for the e-mail only; its digest is kept).

    With ``supersede`` the guardian's earlier unused tokens of the same
    purpose stop working: only the newest confirmation or reset link works.
    """
    now = now or utcnow()
    if supersede:
        session.execute(
            update(EmailToken)
            .where(EmailToken.guardian_id == guardian_id, EmailToken.purpose == purpose, EmailToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
    token = secrets.token_urlsafe(32)
    session.add(
        EmailToken(
            purpose=purpose,
            token_digest=email_token_digest(secret_key, purpose, token),
            guardian_id=guardian_id,
            child_id=child_id,
            enrolment_code_id=code_id,
            relationship_=relationship,
            created_at=now,
            expires_at=now + TOKEN_LIFETIME[purpose],
        )
    )
    session.flush()
    return token


def peek_email_token(
    session: Session, secret_key: str, purpose: str, token: str, now: datetime | None = None
) -> EmailToken | None:
    """The token's row if it would still work (for showing the page); nothing is spent."""
    now = now or utcnow()
    row = session.scalar(
        select(EmailToken).where(EmailToken.token_digest == email_token_digest(secret_key, purpose, token))
    )
    if row is None or row.purpose != purpose or row.used_at is not None or row.expires_at <= now:
        return None
    return row


def consume_email_token(
    session: Session,
    secret_key: str,
    purpose: str,
    token: str,
    *,
    guardian_id: int | None = None,
    now: datetime | None = None,
) -> EmailToken | None:
    """Spend a token with one guarded UPDATE (its row count decides); None if it does not work.

    ``guardian_id`` narrows it to one account (a link that needs its owner signed in).
    """
    now = now or utcnow()
    digest = email_token_digest(secret_key, purpose, token)
    conditions = [
        EmailToken.token_digest == digest,
        EmailToken.purpose == purpose,
        EmailToken.used_at.is_(None),
        EmailToken.expires_at > now,
    ]
    if guardian_id is not None:
        conditions.append(EmailToken.guardian_id == guardian_id)
    result = session.execute(
        update(EmailToken).where(*conditions).values(used_at=now).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return session.scalar(
        select(EmailToken).where(EmailToken.token_digest == digest).execution_options(populate_existing=True)
    )


# -- guardians: registration ----------------------------------------------------


@dataclass
class Registration:
    """What a registration did; the page says the same ("check your e-mail") for all.

    ``outcome``:

    * ``created``: a new account, bound to the code's child, unconfirmed
      (``token`` confirms it);
    * ``join``: the school knows this address for the code's child and it has
      no account yet: its owner chooses the password from the link (``token``);
    * ``add_child``: the address already has an account: its owner adds the
      child from the link, signed in (``token``);
    * ``already_linked``: the address's account already has this child;
    * ``not_linked``: the school knows this address, but not for this child:
      nothing is joined (the owner is told, and asked to contact the school).
    """

    outcome: str
    guardian: Guardian
    child_id: int
    token: str | None = None

    @property
    def locale(self) -> str:
        return self.guardian.locale or "ja"


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
    now: datetime | None = None,
    request_id: str | None = None,
) -> Registration | None:
    """Register with an enrolment code. None if the code is unusable (nothing changes).

    The account is bound to the code's child only. An existing guardian
    record with this address is never adopted here: its owner is e-mailed a
    link (``join``), and only when the record is already linked to the code's
    child. A usable code is spent whatever the outcome, so the page (and the
    code) read the same whichever addresses the school holds.
    """
    now = now or utcnow()
    email = email.strip().lower()
    password_hash = hash_password(password)  # before the code's row lock: hashing is the slow part
    row = consume_enrolment_code(session, secret_key, code, now)
    if row is None:
        return None
    reg = _register(session, secret_key, row, name=name, email=email, password_hash=password_hash, locale=locale,
                    relationship=relationship, now=now)
    audit.record(session, SYSTEM, "family.registration", child_id=reg.child_id,
                 detail={"outcome": reg.outcome, "guardian_id": reg.guardian.id}, request_id=request_id)
    return reg


def _register(session, secret_key, row, *, name, email, password_hash, locale, relationship, now) -> Registration:
    existing = session.scalar(select(Guardian).where(Guardian.email == email))
    if existing is None:
        guardian = Guardian(
            name=name, email=email, password_hash=password_hash, locale=locale, registered_at=now, created_at=now
        )
        try:
            with session.begin_nested():
                session.add(guardian)
                session.flush()
        except IntegrityError:  # the same new address registered at the same moment
            existing = session.scalar(select(Guardian).where(Guardian.email == email))
            if existing is None:
                raise
        else:
            session.add(GuardianChild(guardian_id=guardian.id, child_id=row.child_id, relationship_=relationship))
            row.used_by_guardian_id = guardian.id
            token = issue_email_token(session, secret_key, guardian.id, "confirm", now=now)
            return Registration("created", guardian, row.child_id, token)
    linked = session.scalar(
        select(GuardianChild.id).where(GuardianChild.guardian_id == existing.id, GuardianChild.child_id == row.child_id)
    ) is not None
    if existing.password_hash is None:
        if not linked:
            return Registration("not_linked", existing, row.child_id)
        token = issue_email_token(session, secret_key, existing.id, "join", child_id=row.child_id, code_id=row.id, now=now)
        return Registration("join", existing, row.child_id, token)
    if linked:
        return Registration("already_linked", existing, row.child_id)
    token = issue_email_token(
        session, secret_key, existing.id, "add_child", child_id=row.child_id, code_id=row.id, relationship=relationship,
        now=now, supersede=False,
    )
    return Registration("add_child", existing, row.child_id, token)


def children_ids_of(session: Session, guardian_id: int) -> list[int]:
    return list(
        session.scalars(select(GuardianChild.child_id).where(GuardianChild.guardian_id == guardian_id).order_by(GuardianChild.child_id))
    )


def _record_children_added(session: Session, guardian: Guardian, request_id: str | None) -> list[int]:
    principal = principal_for(guardian)
    children = children_ids_of(session, guardian.id)
    for child_id in children:
        audit.record(session, principal, "family.child_added", child_id=child_id, request_id=request_id)
    return children


def confirm_email(
    session: Session, secret_key: str, token: str, now: datetime | None = None, request_id: str | None = None
) -> Guardian | None:
    """The owner of the address followed the confirmation link: the account may see its children."""
    now = now or utcnow()
    row = consume_email_token(session, secret_key, "confirm", token, now=now)
    if row is None:
        return None
    session.execute(
        update(Guardian)
        .where(Guardian.id == row.guardian_id, Guardian.email_confirmed_at.is_(None))
        .values(email_confirmed_at=now)
        .execution_options(synchronize_session=False)
    )
    guardian = session.scalar(
        select(Guardian).where(Guardian.id == row.guardian_id).execution_options(populate_existing=True)
    )
    audit.record(session, principal_for(guardian), "auth.email_confirmed", request_id=request_id)
    _record_children_added(session, guardian, request_id)
    return guardian


def complete_join(
    session: Session, secret_key: str, token: str, password: str, now: datetime | None = None,
    request_id: str | None = None,
) -> Guardian | None:
    """The owner of a school-held address chose a password from the ``join`` link.

    The record becomes an account (confirmed: the link proved the address)
    only if it still has none and is still linked to the code's child. None
    otherwise (the caller rolls back).
    """
    now = now or utcnow()
    password_hash = hash_password(password)
    row = consume_email_token(session, secret_key, "join", token, now=now)
    if row is None:
        return None
    linked = session.scalar(
        select(GuardianChild.id).where(GuardianChild.guardian_id == row.guardian_id, GuardianChild.child_id == row.child_id)
    ) is not None
    if not linked:
        return None
    result = session.execute(
        update(Guardian)
        .where(Guardian.id == row.guardian_id, Guardian.password_hash.is_(None))
        .values(
            password_hash=password_hash, email_confirmed_at=now, registered_at=now,
            session_version=Guardian.session_version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    session.execute(
        update(EnrolmentCode)
        .where(EnrolmentCode.id == row.enrolment_code_id, EnrolmentCode.used_by_guardian_id.is_(None))
        .values(used_by_guardian_id=row.guardian_id)
        .execution_options(synchronize_session=False)
    )
    guardian = session.scalar(
        select(Guardian).where(Guardian.id == row.guardian_id).execution_options(populate_existing=True)
    )
    audit.record(session, principal_for(guardian), "auth.account_joined", request_id=request_id)
    _record_children_added(session, guardian, request_id)
    return guardian


def _link_child(session: Session, guardian_id: int, child_id: int, relationship: str) -> bool:
    """Link a child to an account; False when it was linked already."""
    exists = session.scalar(
        select(GuardianChild.id).where(GuardianChild.guardian_id == guardian_id, GuardianChild.child_id == child_id)
    )
    if exists is not None:
        return False
    session.add(GuardianChild(guardian_id=guardian_id, child_id=child_id, relationship_=relationship))
    session.flush()
    return True


def complete_add_child(
    session: Session, secret_key: str, token: str, guardian: Principal, now: datetime | None = None,
    request_id: str | None = None,
) -> Child | None:
    """The signed-in owner of the address adds the child from an ``add_child`` link."""
    now = now or utcnow()
    row = consume_email_token(session, secret_key, "add_child", token, guardian_id=guardian.id, now=now)
    if row is None:
        return None
    _link_child(session, guardian.id, row.child_id, row.relationship_ or "parent")
    session.execute(
        update(EnrolmentCode)
        .where(EnrolmentCode.id == row.enrolment_code_id, EnrolmentCode.used_by_guardian_id.is_(None))
        .values(used_by_guardian_id=guardian.id)
        .execution_options(synchronize_session=False)
    )
    audit.record(session, guardian, "family.child_added", child_id=row.child_id, request_id=request_id)
    return session.get(Child, row.child_id)


def redeem_code_for_guardian(
    session: Session, secret_key: str, code: str, guardian: Guardian, *, relationship: str = "parent",
    request_id: str | None = None,
) -> Child | None:
    """Link the code's child to an existing (confirmed) guardian account; the code is spent once."""
    row = consume_enrolment_code(session, secret_key, code)
    if row is None:
        return None
    row.used_by_guardian_id = guardian.id
    _link_child(session, guardian.id, row.child_id, relationship)
    audit.record(session, principal_for(guardian), "family.child_added", child_id=row.child_id, request_id=request_id)
    return session.get(Child, row.child_id)


def can_resend_confirmation(session: Session, guardian_id: int, now: datetime | None = None) -> bool:
    """Rate limit for "send the link again": one every RESEND_INTERVAL, RESEND_PER_DAY a day."""
    now = now or utcnow()
    recent = session.execute(
        select(func.count(EmailToken.id), func.max(EmailToken.created_at)).where(
            EmailToken.guardian_id == guardian_id,
            EmailToken.purpose == "confirm",
            EmailToken.created_at > now - timedelta(days=1),
        )
    ).one()
    count, last = recent
    if count and count >= RESEND_PER_DAY:
        return False
    return not (last is not None and last > now - RESEND_INTERVAL)


def resend_confirmation(session: Session, secret_key: str, guardian_id: int, now: datetime | None = None) -> str | None:
    """A new confirmation link (the old one stops working); None if confirmed already or too soon."""
    now = now or utcnow()
    # One at a time per account (a row lock on PostgreSQL), so parallel clicks send one link.
    guardian = session.scalar(select(Guardian).where(Guardian.id == guardian_id).with_for_update())
    if guardian is None or guardian.email_confirmed_at is not None or guardian.password_hash is None:
        return None
    if not can_resend_confirmation(session, guardian_id, now):
        return None
    return issue_email_token(session, secret_key, guardian_id, "confirm", now=now)


@dataclass
class Notice:
    """One "a child was added" e-mail to send after commit (no child is named in it)."""

    email: str
    locale: str
    own: bool  # True: to the account that gained the child; False: to another guardian of the child


def child_added_notices(session: Session, guardian_id: int, child_ids: list[int]) -> list[Notice]:
    """Who is told that ``guardian_id``'s account gained these children.

    The account itself, and every other guardian of each child whose address
    the city holds (with an account or not): a stranger joining a family is
    then seen by the family at once.
    """
    notices: list[Notice] = []
    me = session.get(Guardian, guardian_id)
    if me is not None and me.email:
        notices.append(Notice(me.email, me.locale or "ja", True))
    if child_ids:
        others = session.execute(
            select(Guardian.email, Guardian.locale)
            .join(GuardianChild, GuardianChild.guardian_id == Guardian.id)
            .where(GuardianChild.child_id.in_(child_ids), Guardian.id != guardian_id, Guardian.email.is_not(None))
            .distinct()
            .order_by(Guardian.email)
        ).all()
        notices.extend(Notice(e, loc or "ja", False) for e, loc in others)
    return notices


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



# -- guardians: password reset ----------------------------------------------------


def request_password_reset(
    session: Session, secret_key: str, email: str, now: datetime | None = None
) -> tuple[Guardian, str] | None:
    """A reset link for the account with this address (None: no account; the page says the same)."""
    guardian = session.scalar(select(Guardian).where(Guardian.email == email.strip().lower()))
    if guardian is None or not guardian.password_hash:
        return None
    return guardian, issue_email_token(session, secret_key, guardian.id, "reset", now=now)


def complete_password_reset(
    session: Session, secret_key: str, token: str, password: str, now: datetime | None = None,
    request_id: str | None = None,
) -> Guardian | None:
    """Spend a reset token (one guarded UPDATE) and set the password; every session ends."""
    now = now or utcnow()
    password_hash = hash_password(password)
    row = consume_email_token(session, secret_key, "reset", token, now=now)
    if row is None:
        return None
    guardian = session.get(Guardian, row.guardian_id)
    if guardian is None or not guardian.password_hash:
        return None
    guardian.password_hash = password_hash
    guardian.session_version += 1  # every session of the account ends, including an attacker's
    guardian.failed_logins = 0
    guardian.login_not_before = None
    session.flush()
    audit.record(session, principal_for(guardian), "auth.password_reset", request_id=request_id)
    return guardian


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
