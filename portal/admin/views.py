"""The administrator's pages: staff accounts. No child data is shown here."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from portal.admin import service
from portal.admin.forms import ChangePasswordForm, EditStaffForm, NewStaffForm, StaffFilterForm
from portal.auth.access import STAFF_ROLES, allow
from portal.auth.service import principal_for
from portal.auth.views import _failures_per_address, _login_limit
from portal.extensions import db, limiter
from portal.people.models import Role, School, SchoolClass, SchoolYear, Staff

bp = Blueprint("admin", __name__, url_prefix="/staff", template_folder="templates")

ADMIN = Role.administrator.value
PER_PAGE = 50


def _error_message(code: str) -> str:
    return {
        "email_taken": _("Another staff account already uses this e-mail address."),
        "school_required": _("Choose at least one school for this role."),
        "unknown_school": _("One of the chosen schools does not exist."),
        "class_outside_schools": _("A homeroom class must be in one of the chosen schools."),
        "last_admin": _("This is the last active administrator: make another administrator first."),
        "self": _("You cannot deactivate your own account."),
    }.get(code, _("The change could not be made."))


def _school_name(school: School) -> str:
    from portal.i18n import select_locale

    return school.name if select_locale() == "ja" else (school.name_en or school.name)


def _fill_choices(form) -> None:
    schools = db.session.scalars(select(School).order_by(School.code)).all()
    names = {s.id: _school_name(s) for s in schools}
    form.schools.choices = [SelectChoice(s.id, names[s.id]) for s in schools]
    classes = db.session.scalars(
        select(SchoolClass).join(SchoolYear, SchoolYear.id == SchoolClass.school_year_id)
        .where(SchoolYear.is_current.is_(True))
        .order_by(SchoolClass.school_id, SchoolClass.grade, SchoolClass.name)
    ).all()
    form.classes.choices = [
        SelectChoice(c.id, f"{names.get(c.school_id, '')} "
                           + _("Grade %(g)d, class %(c)s", g=c.grade_in_school, c=c.name))
        for c in classes
    ]


def _staff_or_404(staff_id: int) -> Staff:
    staff = db.session.get(Staff, staff_id)
    if staff is None:
        abort(404)
    return staff


@bp.route("/admin/staff")
@allow(ADMIN)
def staff_list():
    form = StaffFilterForm(request.args)
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    if not form.validate():
        flash(_("Some search fields are not valid; they were ignored."), "error")
        filters = {}
    else:
        status = form.status.data
        filters = {
            "query": form.q.data or "",
            "role": form.role.data or None,
            "active": {"active": True, "inactive": False}.get(status),
        }
    result = service.list_staff(db.session, **filters, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    pages = max((result.total + PER_PAGE - 1) // PER_PAGE, 1)
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template("admin/staff_list.html", form=form, result=result, page=page, pages=pages, args=args)


@bp.route("/admin/staff/new", methods=["GET", "POST"])
@allow(ADMIN)
def staff_new():
    form = NewStaffForm()
    _fill_choices(form)
    if form.validate_on_submit():
        try:
            staff, password = service.create_staff(
                db.session, current_user, name=form.name.data, email=form.email.data, role=form.role.data,
                locale=form.locale.data, school_ids=form.schools.data or [], class_ids=form.classes.data or [],
            )
        except service.StaffError as e:
            db.session.rollback()
            target = form.email if e.code == "email_taken" else (form.classes if e.code.startswith("class") else form.schools)
            target.errors = [*target.errors, _error_message(e.code)]
        else:
            db.session.commit()
            # Shown once, in this response only: never stored, never in a URL.
            return render_template("admin/temporary_password.html", staff=staff, password=password, created=True)
    return render_template("admin/staff_form.html", form=form, staff=None)


@bp.route("/admin/staff/<int:staff_id>", methods=["GET", "POST"])
@allow(ADMIN)
def staff_edit(staff_id: int):
    staff = _staff_or_404(staff_id)
    form = EditStaffForm(obj=None if request.method == "POST" else staff)
    _fill_choices(form)
    if request.method == "GET":
        form.role.data = staff.role.value
        form.schools.data = [s.school_id for s in staff.scopes]
        form.classes.data = service.homeroom_class_ids(db.session, staff.id)
    if form.validate_on_submit():
        try:
            service.update_staff(
                db.session, current_user, staff, name=form.name.data, role=form.role.data, locale=form.locale.data,
                school_ids=form.schools.data or [], class_ids=form.classes.data or [],
            )
        except service.StaffError as e:
            db.session.rollback()
            staff = _staff_or_404(staff_id)
            target = form.role if e.code == "last_admin" else (form.classes if e.code.startswith("class") else form.schools)
            target.errors = [*target.errors, _error_message(e.code)]
        else:
            db.session.commit()
            flash(_("The account was saved."), "success")
            return redirect(url_for("admin.staff_edit", staff_id=staff.id))
    return render_template("admin/staff_form.html", form=form, staff=staff)


@bp.route("/admin/staff/<int:staff_id>/active", methods=["POST"])
@allow(ADMIN)
def staff_active(staff_id: int):
    staff = _staff_or_404(staff_id)
    active = request.form.get("active") == "1"
    try:
        service.set_active(db.session, current_user, staff, active)
    except service.StaffError as e:
        db.session.rollback()
        flash(_error_message(e.code), "error")
    else:
        db.session.commit()
        flash(_("The account was reactivated.") if active else _("The account was deactivated; its sessions have ended."), "success")
    return redirect(url_for("admin.staff_edit", staff_id=staff_id))


@bp.route("/admin/staff/<int:staff_id>/password", methods=["POST"])
@allow(ADMIN)
def staff_reset_password(staff_id: int):
    staff = _staff_or_404(staff_id)
    password = service.reset_password(db.session, current_user, staff)
    db.session.commit()
    return render_template("admin/temporary_password.html", staff=staff, password=password, created=False)


@bp.route("/admin/staff/<int:staff_id>/totp", methods=["POST"])
@allow(ADMIN)
def staff_reset_totp(staff_id: int):
    staff = _staff_or_404(staff_id)
    service.reset_totp(db.session, current_user, staff)
    db.session.commit()
    flash(_("The authenticator was reset: they set up a new one at their next sign-in."), "success")
    return redirect(url_for("admin.staff_edit", staff_id=staff_id))


@bp.route("/account/password", methods=["GET", "POST"])
@allow(STAFF_ROLES)
@limiter.limit(_login_limit, methods=["POST"])
@_failures_per_address  # the current password is a secret check too: wrong ones count with the sign-in forms'
def change_password():
    staff = db.session.get(Staff, current_user.id)
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if form.password.data == form.current.data:
            form.password.errors = [*form.password.errors, _("Choose a password different from the current one.")]
        elif service.change_own_password(db.session, current_user, staff, form.current.data, form.password.data):
            db.session.commit()
            # This session continues with the new version; every other one has ended.
            login_user(principal_for(staff))
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("backoffice.home"))
        else:
            db.session.commit()
            form.current.errors = [*form.current.errors, _("The current password is not correct.")]
    return render_template("admin/change_password.html", form=form, required=staff.password_change_required)
