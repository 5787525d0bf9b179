"""Sign-in pages for staff (password + TOTP), guardians and students."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import time
from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg
from flask import (
    Blueprint,
    after_this_request,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from portal import mail
from portal.audit import service as audit
from portal.auth import notify, service
from portal.auth.access import ALL_ROLES, SIGNED_IN, UNCONFIRMED_GUARDIAN, allow, public
from portal.auth.forms import (
    AddChildForm,
    GuardianRegisterForm,
    GuardianSignInForm,
    LanguageForm,
    PasswordResetForm,
    PasswordResetRequestForm,
    ResendForm,
    StaffSignInForm,
    StudentSignInForm,
    TotpForm,
)
from portal.extensions import db, limiter
from portal.people.models import Guardian, Staff

bp = Blueprint("auth", __name__, template_folder="templates", static_folder="static", static_url_path="/auth/static")

PENDING_TTL = 300  # seconds between the password and the TOTP step


def _login_limit():
    return current_app.config["LOGIN_RATE_LIMIT"]


def _failed_limit():
    return current_app.config["LOGIN_FAILURE_RATE_LIMIT"]


# Per address, over every sign-in form together: failed attempts only (a
# failed sign-in answers 200 with the form again; a success redirects), so a
# school's tablets behind one address are not stopped by children signing in.
_failures_per_address = limiter.shared_limit(
    _failed_limit, scope="sign-in-failures", methods=["POST"], deduct_when=lambda resp: resp.status_code == 200
)


def _throttle_args():
    return {"max_delay": current_app.config["LOGIN_MAX_DELAY_SECONDS"], "known": _known()}


def _failed_sign_in(result) -> None:
    """The one answer to a failed sign-in: unknown, wrong and delayed look the same."""
    if result.alert_staff is not None:
        _send_guess_alert(result.alert_staff)
    flash(_("The details you entered are not correct, or you tried again too soon. Wait a moment and try again."), "error")


def _send_guess_alert(staff: Staff) -> None:
    """Tell a staff member their account is being guessed (no address, no time: nothing to leak)."""
    from flask_babel import force_locale

    with force_locale(staff.locale):
        msg = mail.build_message(
            staff.email,
            _("Mimamori: someone is trying to sign in to your account"),
            render_template(
                "auth/mail/guess_alert.txt",
                sign_in=current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for("auth.staff_sign_in"),
            ),
        )
    try:
        mail.send(msg)
    except mail.MailError:
        current_app.logger.warning("guess alert not sent (staff id %s)", staff.id)


# -- known browsers -------------------------------------------------------------
#
# A browser an account has signed in on keeps a keyed digest of that account
# (never an id or a name) in a long-lived cookie; attempts from it wait on
# the account's own delay, which a stranger's guesses from elsewhere do not
# touch (auth.service). A shared tablet holds up to KNOWN_MAX such digests.

KNOWN_COOKIE = "mimamori_known"
KNOWN_MAX = 40
KNOWN_DAYS = 180


def _known_digest(kind: str, pk: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"known-browser:{kind}:{pk}".encode(), hashlib.sha256).hexdigest()[:32]


class KnownBrowser:
    """What this browser has signed in as before: ``("student", 12) in known``."""

    def __init__(self, raw: str | None):
        self.digests = [d for d in (raw or "").split(".") if len(d) == 32][:KNOWN_MAX]

    def __contains__(self, pair) -> bool:
        kind, pk = pair
        return _known_digest(kind, pk) in self.digests


def _known() -> KnownBrowser:
    return KnownBrowser(request.cookies.get(KNOWN_COOKIE))


def _remember_browser(principal) -> None:
    digest = _known_digest(principal.kind, principal.id)
    digests = [digest] + [d for d in _known().digests if d != digest]

    @after_this_request
    def _set(resp):
        resp.set_cookie(
            KNOWN_COOKIE, ".".join(digests[:KNOWN_MAX]), max_age=KNOWN_DAYS * 86400, httponly=True,
            secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax",
        )
        return resp


def _start_session(obj) -> None:
    """Sign in with a fresh session (no fixation), keeping the language choice."""
    locale = session.get("locale")
    session.clear()
    principal = service.principal_for(obj)
    login_user(principal)
    _remember_browser(principal)
    session["last_seen"] = time.time()
    if locale and not principal.is_staff:
        session["locale"] = locale
    audit.record(db.session, principal, "auth.sign_in", request_id=g.get("request_id"))


def home_for(user) -> str:
    if not user.is_authenticated:
        return url_for("public.index")
    if user.kind == "guardian":
        return url_for("family.home" if user.role == "guardian" else "auth.confirm_pending")
    if user.kind == "student":
        return url_for("student.home")
    return url_for("backoffice.home")


def _safe_next(target: str | None) -> str | None:
    """Only same-site relative paths: no open redirect after sign-in.

    Control characters are refused too: browsers drop a tab or
    newline inside a URL, so ``/<TAB>/evil.example`` would become ``//evil.example``
    (and a newline in a Location header is an error).
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.route("/signin")
@public
def sign_in():
    if current_user.is_authenticated:
        return redirect(home_for(current_user))
    notice = session.pop("notice", None)
    # Carry the page asked for (an e-mail link, an expired session) to the sign-in form.
    return render_template("auth/sign_in.html", idle=notice == "idle", next=_safe_next(request.args.get("next")))


# -- staff --------------------------------------------------------------------


@bp.route("/staff/signin", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
@_failures_per_address
def staff_sign_in():
    form = StaffSignInForm()
    if form.validate_on_submit():
        result = service.staff_check_password(db.session, form.email.data, form.password.data, **_throttle_args())
        db.session.commit()
        if result.ok:
            session.clear()
            session["pending_staff"] = {"id": result.obj.id, "at": time.time(), "next": _safe_next(request.args.get("next"))}
            if result.reason == "totp_setup":
                return redirect(url_for("auth.staff_totp_setup"))
            return redirect(url_for("auth.staff_totp"))
        _failed_sign_in(result)
    return render_template("auth/staff_sign_in.html", form=form)


def _pending_staff() -> Staff | None:
    pending = session.get("pending_staff")
    if not pending or time.time() - pending.get("at", 0) > PENDING_TTL:
        session.pop("pending_staff", None)
        return None
    return db.session.get(Staff, pending["id"])


@bp.route("/staff/totp", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
@_failures_per_address
def staff_totp():
    staff = _pending_staff()
    if staff is None:
        flash(_("Please sign in again."), "error")
        return redirect(url_for("auth.staff_sign_in"))
    form = TotpForm()
    if form.validate_on_submit():
        result = service.staff_check_totp(db.session, staff, form.code.data, **_throttle_args())
        if result.ok:
            nxt = session["pending_staff"].get("next")
            _start_session(staff)
            db.session.commit()
            return redirect(nxt or url_for("backoffice.home"))
        db.session.commit()
        _failed_sign_in(result)
    return render_template("auth/staff_totp.html", form=form)


@bp.route("/staff/totp/setup", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
@_failures_per_address
def staff_totp_setup():
    staff = _pending_staff()
    if staff is None or staff.totp_secret_enc is not None:
        return redirect(url_for("auth.staff_sign_in"))
    secret = session.get("totp_setup_secret") or service.new_totp_secret()
    session["totp_setup_secret"] = secret
    form = TotpForm()
    if form.validate_on_submit():
        result = service.staff_check_totp(db.session, staff, form.code.data, secret=secret, **_throttle_args())
        if result.ok:
            service.set_totp_secret(staff, secret)
            staff.totp_last_step = result.obj.totp_last_step
            nxt = session["pending_staff"].get("next")
            _start_session(staff)
            audit.record(db.session, service.principal_for(staff), "auth.totp_enrolled")
            db.session.commit()
            return redirect(nxt or url_for("backoffice.home"))
        db.session.commit()
        _failed_sign_in(result)
    uri = service.totp_uri(staff, secret)
    img = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage)
    buf = io.BytesIO()
    img.save(buf)
    qr_data = "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode()
    return render_template("auth/staff_totp_setup.html", form=form, secret=secret, qr_data=qr_data)


# -- guardians ----------------------------------------------------------------


@bp.route("/family/signin", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
@_failures_per_address
def guardian_sign_in():
    form = GuardianSignInForm()
    if form.validate_on_submit():
        result = service.guardian_check_password(db.session, form.email.data, form.password.data, **_throttle_args())
        if result.ok:
            _start_session(result.obj)
            db.session.commit()
            if result.obj.email_confirmed_at is None:
                return redirect(url_for("auth.confirm_pending"))
            return redirect(_safe_next(request.args.get("next")) or url_for("family.home"))
        db.session.commit()
        _failed_sign_in(result)
    return render_template("auth/guardian_sign_in.html", form=form)


def _code_unusable() -> str:
    return _("This code cannot be used. Check it against the letter, or ask the school for a new one.")


@bp.route("/family/register", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def guardian_register():
    """One answer for every address: "check your e-mail" (see service.register_guardian).

    Nobody is signed in here: the address is proven first, and the page never
    says whether the school or an account already has it.
    """
    form = GuardianRegisterForm()
    if form.validate_on_submit():
        reg = service.register_guardian(
            db.session,
            current_app.config["SECRET_KEY"],
            form.code.data,
            name=form.name.data.strip(),
            email=form.email.data,
            password=form.password.data,
            locale=session.get("locale") or "ja",
            relationship=form.relationship.data,
            request_id=g.get("request_id"),
        )
        if reg is None:
            db.session.rollback()
            form.code.errors.append(_code_unusable())
        else:
            db.session.commit()
            notify.registration(reg)
            return redirect(url_for("auth.registration_sent"))
    return render_template("auth/guardian_register.html", form=form)


@bp.route("/family/register/sent")
@public
def registration_sent():
    return render_template("auth/registration_sent.html")


@bp.route("/family/confirm")
@allow(UNCONFIRMED_GUARDIAN, "guardian")
def confirm_pending():
    """All an unconfirmed account sees: check your e-mail (and send the link again)."""
    if current_user.role == "guardian":
        return redirect(url_for("family.home"))
    return render_template("auth/confirm_pending.html", form=ResendForm())


@bp.route("/family/confirm/resend", methods=["POST"])
@allow(UNCONFIRMED_GUARDIAN)
@limiter.limit(_login_limit)
def confirm_resend():
    form = ResendForm()
    if form.validate_on_submit():
        token = service.resend_confirmation(db.session, current_app.config["SECRET_KEY"], current_user.id)
        guardian = db.session.get(Guardian, current_user.id)
        to, locale = guardian.email, guardian.locale
        db.session.commit()
        if token is None:
            flash(_("A link was sent a moment ago. Please wait a few minutes before asking for another."), "error")
        else:
            notify.confirmation(to, locale, token)
            flash(_("We have sent a new link. Only the newest link works."), "success")
    return redirect(url_for("auth.confirm_pending"))


def _link_invalid():
    return render_template("auth/password_reset_invalid.html"), 400


def _commit_and_tell_child_added(guardian_id: int, child_ids) -> None:
    """Commit a new guardian-child link, then e-mail the account and the child's other guardians."""
    notices = service.child_added_notices(db.session, guardian_id, child_ids)
    db.session.commit()
    notify.child_added(notices)


@bp.route("/family/confirm/<token>", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def confirm_email(token: str):
    """The link in the confirmation e-mail: a button (mail scanners open links; only a POST spends it).

    It never signs anyone in: whoever opens the link still needs the
    password (an account someone else created with your address stays theirs
    to prove, not yours to be signed into).
    """
    key = current_app.config["SECRET_KEY"]
    if service.peek_email_token(db.session, key, "confirm", token) is None:
        return _link_invalid()
    form = ResendForm()
    if form.validate_on_submit():
        guardian = service.confirm_email(db.session, key, token, request_id=g.get("request_id"))
        if guardian is None:
            db.session.rollback()
            return _link_invalid()
        _commit_and_tell_child_added(guardian.id, service.children_ids_of(db.session, guardian.id))
        flash(_("Your e-mail address is confirmed."), "success")
        if current_user.is_authenticated and current_user.kind == "guardian" and current_user.id == guardian.id:
            return redirect(url_for("family.home"))
        return redirect(url_for("auth.guardian_sign_in"))
    return render_template("auth/confirm_email.html", form=form)


@bp.route("/family/join/<token>", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def join_account(token: str):
    """The school knew this address for the child: its owner chooses the password here."""
    key = current_app.config["SECRET_KEY"]
    if service.peek_email_token(db.session, key, "join", token) is None:
        return _link_invalid()
    form = PasswordResetForm()
    if form.validate_on_submit():
        guardian = service.complete_join(db.session, key, token, form.password.data, request_id=g.get("request_id"))
        if guardian is None:
            db.session.rollback()
            return _link_invalid()
        _commit_and_tell_child_added(guardian.id, service.children_ids_of(db.session, guardian.id))
        flash(_("Your account is ready. Please sign in."), "success")
        return redirect(url_for("auth.guardian_sign_in"))
    return render_template("auth/join_account.html", form=form)


@bp.route("/family/add-child/<token>", methods=["GET", "POST"])
@allow("guardian")
@limiter.limit(_login_limit, methods=["POST"])
def add_child_link(token: str):
    """The link sent when someone registered with an address that has an account: its owner, signed in."""
    key = current_app.config["SECRET_KEY"]
    row = service.peek_email_token(db.session, key, "add_child", token)
    if row is None or row.guardian_id != current_user.id:
        return _link_invalid()
    form = ResendForm()
    if form.validate_on_submit():
        child = service.complete_add_child(db.session, key, token, current_user, request_id=g.get("request_id"))
        if child is None:
            db.session.rollback()
            return _link_invalid()
        _commit_and_tell_child_added(current_user.id, [child.id])
        flash(_("The child was added to your account."), "success")
        return redirect(url_for("family.home"))
    return render_template("auth/add_child_link.html", form=form)


@bp.route("/family/add-child", methods=["GET", "POST"])
@allow("guardian")
@limiter.limit(_login_limit, methods=["POST"])
def guardian_add_child():
    form = AddChildForm()
    if form.validate_on_submit():
        guardian = db.session.get(Guardian, current_user.id)
        child = service.redeem_code_for_guardian(
            db.session, current_app.config["SECRET_KEY"], form.code.data, guardian, request_id=g.get("request_id")
        )
        if child is None:
            db.session.rollback()
            form.code.errors.append(_code_unusable())
        else:
            _commit_and_tell_child_added(guardian.id, [child.id])
            flash(_("The child was added to your account."), "success")
            return redirect(url_for("family.home"))
    return render_template("auth/add_child.html", form=form)


@bp.route("/family/password-reset", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def password_reset_request():
    form = PasswordResetRequestForm()
    if form.validate_on_submit():
        issued = service.request_password_reset(db.session, current_app.config["SECRET_KEY"], form.email.data)
        if issued is not None:
            guardian, token = issued
            to, locale = guardian.email, guardian.locale
            db.session.commit()
            notify.password_reset(to, locale, token)  # a failed delivery: the page says the same
        # The same answer whether or not the address has an account.
        flash(_("If that address has an account, we have sent it a link to set a new password."), "success")
        return redirect(url_for("auth.guardian_sign_in"))
    return render_template("auth/password_reset_request.html", form=form)


@bp.route("/family/password-reset/<token>", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def password_reset(token: str):
    key = current_app.config["SECRET_KEY"]
    if service.peek_email_token(db.session, key, "reset", token) is None:
        return _link_invalid()
    form = PasswordResetForm()
    if form.validate_on_submit():
        guardian = service.complete_password_reset(
            db.session, key, token, form.password.data, request_id=g.get("request_id")
        )
        if guardian is None:  # spent by a request a moment earlier
            db.session.rollback()
            return _link_invalid()
        db.session.commit()
        flash(_("Your password has been changed. Please sign in."), "success")
        return redirect(url_for("auth.guardian_sign_in"))
    return render_template("auth/password_reset.html", form=form)


# -- students -----------------------------------------------------------------


def _student_failed() -> None:
    """The one answer to a child whose sign-in failed: unknown number, wrong PIN, delayed, bad card."""
    flash(_("The number or the PIN is not right, or you tried too fast. Wait a little and try again."), "error")


@bp.route("/student/signin", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
@_failures_per_address
def student_sign_in():
    form = StudentSignInForm()
    if form.validate_on_submit():
        result = service.student_check_pin(db.session, form.student_no.data, form.pin.data, **_throttle_args())
        if result.ok:
            _start_session(result.obj)
            db.session.commit()
            return redirect(url_for("student.home"))
        db.session.commit()
        _student_failed()
    return render_template("auth/student_sign_in.html", form=form)


@bp.route("/student/card", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
@_failures_per_address
def student_card():
    """The QR card opens this page; one big button signs in.

    The card's URL carries its token in the fragment (``#t=...``), which the
    browser never sends to the server: card.js (a same-origin file, the CSP
    allows no inline script) copies it into the form and replaces the address
    with the bare page, so the tablet's back button and open tab hold no
    token. Only a POST signs in; a token in the query string (an old card) is
    never read, and the address is cleaned of it.
    """
    if request.method == "GET" and request.query_string:
        return redirect(url_for("auth.student_card"), 303)
    if request.method == "POST":
        result = service.student_check_card(
            db.session, current_app.config["SECRET_KEY"], request.form.get("t", ""), known=_known()
        )
        if result.ok:
            _start_session(result.obj)
            db.session.commit()
            return redirect(url_for("student.home"), 303)
        db.session.rollback()
        flash(_("This card does not work now. Wait a little and try again, or ask your teacher."), "error")
    resp = current_app.make_response(render_template("auth/student_card.html"))
    resp.headers["Cache-Control"] = "no-store"  # no copy of the filled-in form in the back/forward cache
    return resp


# -- everyone -----------------------------------------------------------------


@bp.route("/signout", methods=["POST"])
@allow(SIGNED_IN)
def sign_out():
    locale = session.get("locale")
    service.end_sessions(db.session, current_user)
    db.session.commit()
    logout_user()
    session.clear()
    if locale:
        session["locale"] = locale
    flash(_("You have signed out."), "success")
    return redirect(url_for("public.index"))


@bp.route("/language", methods=["POST"])
@allow(ALL_ROLES)
def set_language():
    form = LanguageForm()
    if form.validate_on_submit():
        locale = form.locale.data
        session["locale"] = locale
        if current_user.is_authenticated:
            from portal.people.service import save_locale

            save_locale(db.session, current_user, locale)
            db.session.commit()
            # the principal carries the locale: reload it on the next request
            login_user(service.load_principal(db.session, current_user.get_id()))
    return redirect(_safe_next(request.form.get("next")) or url_for("public.index"))
