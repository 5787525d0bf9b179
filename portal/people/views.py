"""School staff's class pages: sign-in card sheets and enrolment letters."""

from __future__ import annotations

import io

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    send_file,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from portal.auth.access import allow
from portal.extensions import db
from portal.people import cards as card_service
from portal.people import letters as letter_service
from portal.people import roster
from portal.people.forms import IssueCardsForm, IssueLettersForm
from portal.people.models import Role, School

bp = Blueprint("people", __name__, url_prefix="/staff/classes", template_folder="templates")

TEACHER, LEAD = Role.teacher.value, Role.school_lead.value


def _class_or_404(class_id: int):
    school_class = roster.class_for(db.session, current_user, class_id)
    if school_class is None:
        abort(404)
    return school_class, db.session.get(School, school_class.school_id)


def _pdf(data: bytes, name: str):
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True, download_name=name)


@bp.route("/")
@allow(TEACHER, LEAD)
def classes():
    rows = roster.manageable_classes(db.session, current_user)
    return render_template("people/classes.html", rows=rows, is_lead=current_user.role == LEAD)


@bp.route("/<int:class_id>/cards", methods=["GET", "POST"])
@allow(TEACHER, LEAD)
def cards(class_id: int):
    school_class, school = _class_or_404(class_id)
    count = len(roster.children_of_class(db.session, school_class))
    form = IssueCardsForm()
    if form.validate_on_submit():
        base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
        issued = card_service.issue_cards(
            db.session,
            current_user,
            school_class,
            secret_key=current_app.config["SECRET_KEY"],
            card_url=base + url_for("auth.student_card"),
            request_id=g.get("request_id"),
        )
        pdf = card_service.render_card_sheet(school, school_class, issued, locale=str(get_locale()))
        db.session.commit()  # only once the sheet exists: no PIN changes without its card
        return _pdf(pdf, f"cards-{school.code}-{school_class.grade}-{school_class.name}.pdf")
    return render_template("people/cards.html", form=form, school_class=school_class, school=school, count=count)


@bp.route("/<int:class_id>/sign-in")
@allow(TEACHER, LEAD)
def sign_in_status(class_id: int):
    """Each child's card (last used, revoked) and whether wrong PINs delay them, with the teacher's buttons."""
    school_class, school = _class_or_404(class_id)
    rows = card_service.sign_in_rows(db.session, current_user, school_class, request_id=g.get("request_id"))
    db.session.commit()  # the audit rows of the read
    return render_template("people/sign_in.html", rows=rows, school_class=school_class, school=school)


@bp.route("/<int:class_id>/children/<int:child_id>/revoke-card", methods=["POST"])
@allow(TEACHER, LEAD)
def revoke_card(class_id: int, child_id: int):
    school_class, _school = _class_or_404(class_id)
    done = card_service.revoke_child_card(db.session, current_user, school_class, child_id, request_id=g.get("request_id"))
    if done is None:
        abort(404)
    db.session.commit()
    flash(_("The card no longer works. The PIN still does; print a new card sheet when the child needs a card.")
          if done else _("This child has no card that works."), "success")
    return redirect(url_for("people.sign_in_status", class_id=class_id))


@bp.route("/<int:class_id>/children/<int:child_id>/clear-delay", methods=["POST"])
@allow(TEACHER, LEAD)
def clear_delay(class_id: int, child_id: int):
    school_class, _school = _class_or_404(class_id)
    if card_service.clear_child_delay(db.session, current_user, school_class, child_id, request_id=g.get("request_id")) is None:
        abort(404)
    db.session.commit()
    flash(_("The child can try to sign in again now."), "success")
    return redirect(url_for("people.sign_in_status", class_id=class_id))


@bp.route("/<int:class_id>/letters", methods=["GET", "POST"])
@allow(LEAD)
def letters(class_id: int):
    school_class, school = _class_or_404(class_id)
    count = len(roster.children_without_account(db.session, school_class))
    days = current_app.config["ENROLMENT_CODE_DAYS"]
    form = IssueLettersForm()
    if form.validate_on_submit():
        base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
        issued = letter_service.issue_letters(
            db.session,
            current_user,
            school_class,
            secret_key=current_app.config["SECRET_KEY"],
            days=days,
            request_id=g.get("request_id"),
        )
        pdf = letter_service.render_letters(
            db.session, school, school_class, issued, register_url=base + url_for("auth.guardian_register"),
            locale=str(get_locale()),
        )
        db.session.commit()
        return _pdf(pdf, f"letters-{school.code}-{school_class.grade}-{school_class.name}.pdf")
    return render_template(
        "people/letters.html", form=form, school_class=school_class, school=school, count=count, days=days
    )
