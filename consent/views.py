"""Consent pages: families (/family/consent), students (/student/consent),
staff (/staff/consent) and the public transparency pages (/consent)."""

from __future__ import annotations

import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from consent import receipts, reports, rights, service
from consent.forms import (
    AnswerForm,
    DecisionForm,
    PaperFileForm,
    PaperForm,
    PublishForm,
    PurposeForm,
    ReleaseForm,
    RequestForm,
)
from consent.models import (
    LAPSE_WINDOW_DAYS,
    Action,
    DataRequest,
    OldConsent,
    Party,
    RequestKind,
    RequestStatus,
)
from consent.paper import import_paper, record_paper
from portal.audit.service import record_child_read
from portal.auth.access import allow, child_or_404, public
from portal.bodylimit import accepts_files
from portal.extensions import db
from portal.people import service as people
from portal.people.models import Child, Role
from portal.tabular import TabularError, render_message

bp = Blueprint("consent", __name__, template_folder="templates")

STEWARD = Role.data_steward.value
COVERAGE_ROLES = (Role.data_steward.value, Role.coordinator.value)


def _locale() -> str:
    return str(get_locale() or "ja")


def _purpose_or_404(code: str):
    purpose = service.purpose_by_code(db.session, code)
    if purpose is None or not purpose.active:
        abort(404)
    return purpose


def _state_for(states, code):
    return next((s for s in states if s.purpose.code == code), None)


def _decide(form: DecisionForm, child_id: int, purpose, party: Party) -> bool:
    """Record the decision from a valid form; flash the outcome. True when recorded."""
    action = Action(form.action.data)
    try:
        service.record_event(
            db.session,
            current_user,
            child_id,
            purpose,
            party,
            action,
            locale=_locale(),
            expected_last_event_id=form.expected_last_event(),
        )
    except service.AlreadyRecorded as exc:
        db.session.rollback()
        flash(str(exc.message), "info")
        return False
    except service.ConsentError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return False
    db.session.commit()
    if action == Action.grant:
        flash(_("Thank you. Your consent is recorded. You can withdraw it here at any time."), "success")
    else:
        flash(_("Your withdrawal is recorded and takes effect now."), "success")
    return True


def _check_format(fmt: str) -> None:
    if fmt not in ("pdf", "json"):
        abort(404)


def _receipt_response(ev, fmt: str):
    if fmt == "json":
        body = json.dumps(receipts.receipt_json(db.session, ev), ensure_ascii=False, indent=2)
        return Response(
            body,
            mimetype="application/json",
            headers={"Content-Disposition": f'attachment; filename="consent-receipt-{ev.id}.json"'},
        )
    pdf = receipts.receipt_pdf(db.session, ev)
    return Response(
        pdf, mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="consent-receipt-{ev.id}.pdf"'},
    )


# -- guardians -------------------------------------------------------------------------


@bp.route("/family/consent/")
@allow("guardian")
def family_home():
    children = people.children_of_guardian(db.session, current_user.id)
    states = service.purpose_states_for(db.session, [child.id for child, _c, _s in children])
    overview = [(child, states[child.id]) for child, _c, _s in children]
    return render_template("consent/family_home.html", overview=overview)


@bp.route("/family/consent/children/<int:child_id>/<code>", methods=["GET", "POST"])
@allow("guardian")
def family_purpose(child_id: int, code: str):
    child = child_or_404(db.session, current_user, child_id)
    purpose = _purpose_or_404(code)
    form = DecisionForm()
    if form.validate_on_submit():
        _decide(form, child.id, purpose, Party.guardian)
        return redirect(url_for("consent.family_purpose", child_id=child.id, code=code))
    state = _state_for(service.purpose_states(db.session, child.id), code)
    doc = service.document_for(db.session, purpose, _locale())
    _prefill(form, state.guardian)
    status = 422 if form.errors else 200
    return render_template("consent/family_purpose.html", child=child, purpose=purpose, state=state, doc=doc,
                           form=form), status


def _prefill(form, party_state) -> None:
    """Tie the decision forms to the party's latest event (the page offers ``party_state.offers()``)."""
    last = party_state.last
    form.last_event.data = str(last.id) if last else ""
    form.confirm.data = False


@bp.route("/family/consent/children/<int:child_id>/history")
@allow("guardian")
def family_history(child_id: int):
    child = child_or_404(db.session, current_user, child_id)
    events = service.history(db.session, child.id)
    return render_template("consent/history.html", child=child, events=events, receipt_endpoint="consent.family_receipt")


@bp.route("/family/consent/children/<int:child_id>/receipts/<int:event_id>.<fmt>")
@allow("guardian")
def family_receipt(child_id: int, event_id: int, fmt: str):
    _check_format(fmt)
    child = child_or_404(db.session, current_user, child_id)
    ev = rights.event_for_child(db.session, child.id, event_id)
    if ev is None:
        abort(404)
    return _receipt_response(ev, fmt)


@bp.route("/family/consent/children/<int:child_id>/access")
@allow("guardian")
def family_access(child_id: int):
    child = child_or_404(db.session, current_user, child_id)
    rows = rights.access_log_by_role_and_date(db.session, child.id)
    return render_template("consent/family_access.html", child=child, rows=rows)


@bp.route("/family/requests", methods=["GET", "POST"])
@allow("guardian")
def family_requests():
    children = people.children_of_guardian(db.session, current_user.id)
    purposes = service.active_purposes(db.session)
    form = RequestForm()
    form.child_id.choices = [SelectChoice(c.id, c.name) for c, _cl, _s in children]
    form.purpose.choices = [SelectChoice("", _("(none)"))] + [
        SelectChoice(p.code, p.text("title", _locale())) for p in purposes
    ]
    if form.validate_on_submit():
        child = child_or_404(db.session, current_user, form.child_id.data)
        try:
            rights.create_request(
                db.session, current_user, child.id, RequestKind(form.kind.data),
                purpose_code=form.purpose.data or None, details=form.details.data or "",
            )
        except service.ConsentError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
        else:
            db.session.commit()
            flash(_("Your request is received. The city answers within 30 days."), "success")
            return redirect(url_for("consent.family_requests"))
    reqs = rights.requests_of_guardian(db.session, current_user.id)
    names = {c.id: c.name for c, _cl, _s in children}
    status = 422 if form.errors else 200
    return render_template("consent/family_requests.html", form=form, requests=reqs, names=names), status


@bp.route("/family/requests/<int:request_id>/disclosure.<fmt>")
@allow("guardian")
def family_disclosure(request_id: int, fmt: str):
    _check_format(fmt)
    req = db.session.get(DataRequest, request_id)
    if req is None or not req.disclosure_ready:
        abort(404)
    child_or_404(db.session, current_user, req.child_id)
    data = rights.disclosure(db.session, current_user, req.child_id,
                             release_withheld=req.withheld_released_at is not None)
    db.session.commit()
    return _disclosure_response(data, fmt, req.id)


def _disclosure_response(data: dict, fmt: str, request_id: int):
    name = f"disclosure-{request_id}.{fmt}"
    if fmt == "json":
        return Response(json.dumps(data, ensure_ascii=False, indent=2), mimetype="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return Response(receipts.disclosure_pdf(data), mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- students ----------------------------------------------------------------------------


@bp.route("/student/consent/")
@allow("student")
def student_home():
    states = [s for s in service.purpose_states(db.session, current_user.id) if s.child.required]
    return render_template("consent/student_home.html", states=states)


@bp.route("/student/consent/<code>", methods=["GET", "POST"])
@allow("student")
def student_purpose(code: str):
    child = db.session.get(Child, current_user.id)
    purpose = _purpose_or_404(code)
    state = _state_for(service.purpose_states(db.session, child.id), code)
    if not state.child.required:
        abort(404)
    form = DecisionForm()
    if form.validate_on_submit():
        _decide(form, child.id, purpose, Party.child)
        return redirect(url_for("consent.student_purpose", code=code))
    doc = service.document_for(db.session, purpose, _locale())
    _prefill(form, state.child)
    status = 422 if form.errors else 200
    return render_template("consent/student_purpose.html", child=child, purpose=purpose, state=state, doc=doc,
                           form=form), status


@bp.route("/student/consent/history")
@allow("student")
def student_history():
    events = service.history(db.session, current_user.id, party=Party.child)
    return render_template("consent/student_history.html", events=events)


@bp.route("/student/consent/receipts/<int:event_id>.<fmt>")
@allow("student")
def student_receipt(event_id: int, fmt: str):
    _check_format(fmt)
    ev = rights.event_for_child(db.session, current_user.id, event_id)
    if ev is None or ev.party != Party.child:
        abort(404)
    return _receipt_response(ev, fmt)


# -- staff --------------------------------------------------------------------------------


@bp.route("/staff/consent/")
@allow(STEWARD)
def staff_purposes():
    purposes = service.active_purposes(db.session)
    found = service.current_versions(db.session, [p.id for p in purposes])
    versions = {p.id: found.get(p.id) for p in purposes}
    return render_template("consent/staff_purposes.html", purposes=purposes, versions=versions,
                           lapse_days=LAPSE_WINDOW_DAYS)


@bp.route("/staff/consent/purposes/new", methods=["GET", "POST"])
@bp.route("/staff/consent/purposes/<code>/edit", methods=["GET", "POST"])
@allow(STEWARD)
def staff_purpose_edit(code: str | None = None):
    purpose = _purpose_or_404(code) if code else None
    form = PurposeForm()
    if purpose is not None and request.method == "GET":
        form.code.data = purpose.code
        form.retention_days.data = purpose.retention_days
        form.child_from_grade.data = purpose.child_from_grade
        for name in service.TEXT_FIELDS + service.LIST_FIELDS:
            for loc in ("ja", "en"):
                value = (getattr(purpose, name) or {}).get(loc, "")
                getattr(form, f"{name}_{loc}").data = "\n".join(value) if isinstance(value, list) else value
    if purpose is not None:
        form.code.data = purpose.code
    if form.validate_on_submit():
        texts = {
            name: {loc: getattr(form, f"{name}_{loc}").data or "" for loc in ("ja", "en")}
            for name in service.TEXT_FIELDS + service.LIST_FIELDS
        }
        try:
            saved = service.save_purpose(db.session, current_user, purpose, code=form.code.data, texts=texts,
                                         retention_days=form.retention_days.data,
                                         child_from_grade=form.child_from_grade.data)
        except service.ConsentError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
        else:
            db.session.commit()
            flash(_("The purpose is saved."), "success")
            if service.current_version(db.session, saved.id) is None:
                return redirect(url_for("consent.staff_publish", code=saved.code))
            return redirect(url_for("consent.staff_purposes"))
    status = 422 if form.errors or request.method == "POST" else 200
    return render_template("consent/staff_purpose_edit.html", purpose=purpose, form=form), status


@bp.route("/staff/consent/purposes/<code>/publish", methods=["GET", "POST"])
@allow(STEWARD)
def staff_publish(code: str):
    purpose = _purpose_or_404(code)
    form = PublishForm()
    if request.method == "GET":
        for loc in ("ja", "en"):
            doc = service.document_for(db.session, purpose, loc)
            if doc is not None and doc.locale == loc:
                getattr(form, f"title_{loc}").data = doc.title
                getattr(form, f"body_{loc}").data = doc.body
                getattr(form, f"child_body_{loc}").data = doc.child_body
    if form.validate_on_submit():
        texts = {"ja": (form.title_ja.data, form.body_ja.data, form.child_body_ja.data or "")}
        if (form.title_en.data or "").strip() and (form.body_en.data or "").strip():
            texts["en"] = (form.title_en.data, form.body_en.data, form.child_body_en.data or "")
        try:
            v = service.publish_version(db.session, current_user, purpose, texts, material=form.material.data,
                                        old_consent=OldConsent(form.old_consent.data))
        except service.ConsentError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
        else:
            db.session.commit()
            flash(_("Version %(v)d is published.", v=v.version), "success")
            return redirect(url_for("consent.staff_purposes"))
    return render_template("consent/staff_publish.html", purpose=purpose, form=form), (422 if form.errors else 200)


@bp.route("/staff/consent/paper", methods=["GET", "POST"])
@allow(STEWARD)
@accepts_files
def staff_paper():
    form = PaperForm(prefix="one")
    file_form = PaperFileForm(prefix="file")
    form.purpose.choices = [SelectChoice(p.code, p.text("title", _locale())) for p in service.active_purposes(db.session)]
    report = None
    status = 200
    if "one-student_no" in request.form and form.validate_on_submit():
        try:
            _ev, created = record_paper(
                db.session, current_user, student_no=form.student_no.data, party=form.party.data,
                purpose_code=form.purpose.data, action=form.action.data, signed_on=form.signed_on.data,
                form_no=form.form_no.data, signer=form.signer.data,
            )
        except service.ConsentError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
            status = 422
        else:
            db.session.commit()
            flash(_("The paper form is recorded.") if created else _("This paper form was already recorded. Nothing was changed."),
                  "success" if created else "info")
            return redirect(url_for("consent.staff_paper"))
    elif "file-csrf_token" in request.form and file_form.validate_on_submit():
        try:
            report = import_paper(db.session, current_user, file_form.file.data, filename=file_form.file.data.filename)
        except TabularError as exc:
            db.session.rollback()
            flash(render_message(exc.message), "error")
            status = 422
        else:
            db.session.commit()
    elif request.method == "POST":
        status = 422
    return render_template("consent/staff_paper.html", form=form, file_form=file_form, report=report), status


@bp.route("/staff/consent/requests")
@allow(STEWARD)
def staff_requests():
    show = request.args.get("show", "open")
    rows = rights.request_queue(db.session, status=RequestStatus.open if show == "open" else None)
    return render_template("consent/staff_requests.html", rows=rows, show=show)


@bp.route("/staff/consent/requests/<int:request_id>", methods=["GET", "POST"])
@allow(STEWARD)
def staff_request(request_id: int):
    req = db.session.get(DataRequest, request_id)
    if req is None:
        abort(404)
    child = db.session.get(Child, req.child_id)
    form = AnswerForm()
    if form.validate_on_submit():
        try:
            rights.answer_request(db.session, current_user, req, status=RequestStatus(form.status.data),
                                  outcome=form.outcome.data)
        except service.ConsentError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
        else:
            db.session.commit()
            flash(_("The answer is recorded."), "success")
            return redirect(url_for("consent.staff_request", request_id=req.id))
    record_child_read(db.session, current_user, child.id, "consent.request", purpose="data_request")
    withheld = rights.withheld_summary(db.session, child.id) if req.kind == RequestKind.disclosure else []
    db.session.commit()
    days_left = (req.due_on - rights.today_tokyo()).days
    return render_template("consent/staff_request.html", req=req, child=child, form=form, days_left=days_left,
                           withheld=withheld, release_form=ReleaseForm()), (
        422 if form.errors else 200
    )


@bp.route("/staff/consent/requests/<int:request_id>/release", methods=["POST"])
@allow(STEWARD)
def staff_release(request_id: int):
    req = db.session.get(DataRequest, request_id)
    if req is None:
        abort(404)
    form = ReleaseForm()
    if not form.validate_on_submit():
        flash(_("Confirm your judgement first."), "error")
        return redirect(url_for("consent.staff_request", request_id=req.id))
    try:
        rights.release_withheld(db.session, current_user, req)
    except service.ConsentError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
    else:
        db.session.commit()
        flash(_("Released: the family's disclosure for this request now includes these records."), "success")
    return redirect(url_for("consent.staff_request", request_id=req.id))


@bp.route("/staff/consent/requests/<int:request_id>/disclosure.<fmt>")
@allow(STEWARD)
def staff_disclosure(request_id: int, fmt: str):
    _check_format(fmt)
    req = db.session.get(DataRequest, request_id)
    if req is None or req.kind != RequestKind.disclosure:
        abort(404)
    # What the family gets for this request (the steward checks it before answering).
    data = rights.disclosure(db.session, current_user, req.child_id,
                             release_withheld=req.withheld_released_at is not None)
    db.session.commit()
    return _disclosure_response(data, fmt, req.id)


@bp.route("/staff/consent/coverage")
@allow(COVERAGE_ROLES)
def staff_coverage():
    purposes, rows = reports.coverage(db.session)
    total = reports.coverage_totals(purposes, rows)
    return render_template("consent/staff_coverage.html", purposes=purposes, rows=rows, total=total)


# -- public ---------------------------------------------------------------------------------


@bp.route("/consent/purposes")
@public
def public_purposes():
    purposes = service.active_purposes(db.session)
    return render_template("consent/public_purposes.html", purposes=purposes, lapse_days=LAPSE_WINDOW_DAYS)


@bp.route("/consent/register")
@public
def public_register():
    entries = reports.file_register(db.session, _locale())
    return render_template("consent/public_register.html", entries=entries)
