"""Casework pages: thin views over the services (parse, call, commit once, render)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from backoffice.casework import labels, reports, service, tasks
from backoffice.casework.forms import (
    AssessmentForm,
    AttendeesForm,
    CloseForm,
    ContinueForm,
    DecisionForm,
    ListCaseForm,
    MeetingForm,
    PlanForm,
    ReferralForm,
    RespondForm,
    StartFromForm,
    VersionForm,
)
from backoffice.casework.models import CaseStatus
from backoffice.casework.service import CaseworkError, Conflict, NotFound
from portal.auth.access import SCHOOL_STAFF, allow, visible_school_ids
from portal.extensions import db
from portal.people.labels import role_label
from portal.people.models import Role, School
from portal.tabular import csv_response

bp = Blueprint("casework", __name__, url_prefix="/staff/cases", template_folder="templates")

LEAD = ("school_lead",)
PLANNERS = ("school_lead", "counsellor", "social_worker")


def _me():
    """The signed-in principal itself, not Flask-Login's proxy: a list of a thousand rows audits
    each child, and every attribute read through the proxy looks the user up again."""
    return current_user._get_current_object()


def _locale() -> str:
    return str(get_locale() or "ja")


@bp.app_context_processor
def _casework_globals():
    return {"cw_labels": labels, "cw_label": labels.label}


def _apply_error(form, err: CaseworkError) -> None:
    if form is not None and err.field and err.field in form:
        form[err.field].errors = [*form[err.field].errors, str(err.message)]
    else:
        flash(str(err.message), "error")


def _form_refused(err: CaseworkError, form, case_id: int, what: str):
    """A form step refused: roll back, reload the latest case, say why. Returns (case, status).

    A conflict (stale form) moves the form to the latest version and answers
    409; any other refusal marks its field and answers 400.
    """
    db.session.rollback()
    case = service.read_case(db.session, _me(), case_id, what)
    if isinstance(err, Conflict):
        form.version.data = case.version
        flash(str(err.message), "error")
        return case, 409
    _apply_error(form, err)
    return case, 400


def _render(template: str, *args, **ctx):
    """Commit (the page's audit rows), then render: the audit chain's lock is not held while rendering."""
    db.session.commit()
    return render_template(template, **ctx)


def _back_to_case(case_id: int):
    return redirect(url_for("casework.case", case_id=case_id))


def _fail(err: CaseworkError, case_id: int):
    """A refused step on the case page: roll back, say why, show the latest case."""
    db.session.rollback()
    flash(str(err.message), "error")
    return _back_to_case(case_id)


# -- the teacher's queue ---------------------------------------------------------------


@bp.route("/queue")
@allow("teacher", "school_lead")
def queue():
    items, alerts = reports.queue(db.session, _me(), _locale())
    return _render("casework/queue.html", items=items, alerts=alerts, form=StartFromForm())


@bp.route("/start", methods=["POST"])
@allow("teacher", "school_lead")
def start():
    form = StartFromForm()
    if not form.validate_on_submit() or not (form.flag_id.data or form.alert_id.data):
        abort(400)
    try:
        if form.flag_id.data:
            case = service.open_from_flag(db.session, _me(), form.flag_id.data)
        else:
            case = service.open_from_alert(db.session, _me(), form.alert_id.data)
    except NotFound:
        abort(404)
    except CaseworkError as err:
        db.session.rollback()
        flash(str(err.message), "error")
        return redirect(url_for("casework.queue"))
    db.session.commit()
    if case.status in (CaseStatus.flagged, CaseStatus.reopened, CaseStatus.assessed):
        return redirect(url_for("casework.assess", case_id=case.id))
    return _back_to_case(case.id)


# -- the register, the case page --------------------------------------------------------


def _school_choice(required: bool = False) -> tuple[list[School], int | None]:
    schools = list(db.session.scalars(
        select(School).where(School.id.in_(visible_school_ids(_me()))).order_by(School.code)))
    sid = request.args.get("school", type=int)
    if sid is not None and sid not in {s.id for s in schools}:
        abort(404)
    if sid is None and required and schools:
        sid = schools[0].id
    return schools, sid


@bp.route("/")
@allow(SCHOOL_STAFF)
def register():
    schools, sid = _school_choice()
    status = request.args.get("status") or None
    if status is not None and status not in labels.STATUS:
        status = None
    rows = reports.register(db.session, _me(), school_id=sid, status=status)
    # A long list: labels, dates and links are worked out once, not once a row.
    return _render("casework/register.html", rows=rows, schools=schools, school_id=sid, status=status,
                           status_names={k: str(v) for k, v in labels.STATUS.items()}, short_date=_date_memo(),
                           case_url=url_for("casework.case", case_id=1)[:-1])


def _date_memo():
    from datetime import datetime

    from portal.i18n import TOKYO, local_date

    cache: dict = {}

    def short(value) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            value = value.astimezone(TOKYO).date()
        if value not in cache:
            cache[value] = local_date(value, "short")
        return cache[value]

    return short


@bp.route("/register.csv")
@allow(LEAD)
def register_csv():
    _schools, sid = _school_choice()
    rows = reports.register(db.session, _me(), school_id=sid)
    header, body = reports.register_csv(rows)
    db.session.commit()
    return csv_response(f"case-register-{service.tokyo_today().isoformat()}.csv", header, body)


def _case_context(case, **forms):
    from backoffice.casework import flags

    flag = flags.shown(db.session, case.flag_id)
    plan = service.get_plan(db.session, case.id)
    referral_form = forms.pop("referral_form", None) or ReferralForm()
    _referral_choices(referral_form, case.school_id)
    referrals = service.referrals_of(db.session, case.id)
    return dict(
        case=case,
        flag_reasons=flags.describe(flag, _locale()) if flag else [],
        assessment=service.latest_assessment(db.session, case.id),
        plan=plan,
        referrals=referrals,
        events=service.history(db.session, case.id),
        referral_form=referral_form,
        respond_form=RespondForm(),
        version_form=VersionForm(data={"version": case.version}),
        close_form=forms.pop("close_form", None) or CloseForm(data={"version": case.version}),
        continue_form=forms.pop("continue_form", None) or ContinueForm(data={"version": case.version}),
        service_names=_service_names([r.service_id for r in referrals]),
        is_lead=current_user.role == Role.school_lead,
        **forms,
    )


def _service_names(ids) -> dict[int, str]:
    from resources.models import Service

    ids = [i for i in ids if i]
    if not ids:
        return {}
    loc = _locale()
    return {s.id: s.name(loc) for s in db.session.scalars(select(Service).where(Service.id.in_(ids)))}


def _referral_choices(form: ReferralForm, school_id: int) -> None:
    from resources.models import Service, ServiceStatus

    receivers = service.school_staff(db.session, school_id, [Role.counsellor, Role.social_worker])
    form.receiver_id.choices = [SelectChoice(0, "—")] + [
        SelectChoice(s.id, f"{s.name}（{role_label(s.role)}）") for s in receivers
    ]
    loc = _locale()
    services = db.session.scalars(
        select(Service).where(Service.status == ServiceStatus.published).order_by(Service.name_ja).limit(500)
    ).all()
    form.service_id.choices = [SelectChoice(0, "—")] + [SelectChoice(s.id, s.name(loc)) for s in services]


@bp.route("/<int:case_id>")
@allow(SCHOOL_STAFF)
def case(case_id: int):
    try:
        c = service.read_case(db.session, _me(), case_id)
    except NotFound:
        abort(404)
    ctx = _case_context(c)
    return _render("casework/case.html", **ctx)


# -- assessment ----------------------------------------------------------------------------


@bp.route("/<int:case_id>/assessment", methods=["GET", "POST"])
@allow("teacher", "school_lead")
def assess(case_id: int):
    try:
        c = service.read_case(db.session, _me(), case_id, "casework.assessment")
    except NotFound:
        abort(404)
    if c.status not in (CaseStatus.flagged, CaseStatus.reopened, CaseStatus.assessed):
        db.session.commit()
        if c.status == CaseStatus.closed:
            flash(_("This case is closed. Reopen it before recording an assessment."), "error")
        else:
            flash(_("The school has already decided on this case; an assessment can no longer be changed."), "error")
        return _back_to_case(c.id)
    form = AssessmentForm()
    if request.method == "GET":
        previous = service.latest_assessment(db.session, c.id)
        if previous is not None:  # a new assessment starts from the last one
            form = AssessmentForm(obj=previous)
        form.version.data = c.version
    status = 200
    if form.validate_on_submit():
        data = service.AssessmentData(**{
            k: form[k].data for k in (
                "proposal", "attendance", "attendance_note", "learning", "learning_note", "health", "health_note",
                "relationships", "relationships_note", "family_contact", "family_contact_note", "child_voice",
                "notes", "review_date", "no_concern_reason")
        })
        try:
            service.assess(db.session, _me(), c.id, form.version.data, data)
            db.session.commit()
            flash(_("The assessment was saved. The school lead can now list the case for a case meeting."), "success")
            return _back_to_case(c.id)
        except CaseworkError as err:
            c, status = _form_refused(err, form, case_id, "casework.assessment")
    elif request.method == "POST":
        status = 400
    from backoffice.casework import flags

    flag = flags.shown(db.session, c.flag_id)
    ctx = dict(case=c, form=form, flag_reasons=flags.describe(flag, _locale()) if flag else [],
               latest=service.latest_assessment(db.session, c.id))
    return _render("casework/assess.html", **ctx), status


# -- review, closure, reopening --------------------------------------------------------------


def _version_step(case_id: int, fn, form_cls=VersionForm, **extra):
    form = form_cls()
    if not form.validate_on_submit():
        db.session.rollback()
        errors = [e for f in form for e in f.errors]
        flash(str(errors[0]) if errors else _("Please check the form."), "error")
        return _back_to_case(case_id)
    try:
        fn(db.session, _me(), case_id, form.version.data, **{k: form[v].data for k, v in extra.items()})
    except NotFound:
        abort(404)
    except CaseworkError as err:
        return _fail(err, case_id)
    db.session.commit()
    flash(_("Saved."), "success")
    return _back_to_case(case_id)


@bp.route("/<int:case_id>/review", methods=["POST"])
@allow(LEAD)
def review(case_id: int):
    return _version_step(case_id, service.start_review)


@bp.route("/<int:case_id>/continue", methods=["POST"])
@allow(LEAD)
def continue_support(case_id: int):
    return _version_step(case_id, service.continue_after_review, ContinueForm, review_date="review_date")


@bp.route("/<int:case_id>/close", methods=["POST"])
@allow(LEAD)
def close(case_id: int):
    return _version_step(case_id, service.close_case, CloseForm, reason="reason", note="note")


@bp.route("/<int:case_id>/reopen", methods=["POST"])
@allow(LEAD)
def reopen(case_id: int):
    return _version_step(case_id, service.reopen_case)


# -- support plan --------------------------------------------------------------------------


@bp.route("/<int:case_id>/plan", methods=["GET", "POST"])
@allow(PLANNERS)
def plan(case_id: int):
    try:
        c = service.read_case(db.session, _me(), case_id, "casework.plan")
    except NotFound:
        abort(404)
    existing = service.get_plan(db.session, c.id)
    form = PlanForm()
    staff = service.school_staff(db.session, c.school_id)
    owner_choices = [SelectChoice(0, "—")] + [SelectChoice(s.id, f"{s.name}（{role_label(s.role)}）") for s in staff]
    if request.method == "GET":
        form.version.data = c.version
        if existing is not None:
            form.goals.data = "\n".join(g.text for g in existing.goals)
            form.review_date.data = existing.review_date
            open_actions = [a for a in existing.actions if a.done_at is None]
            while len(form.actions) < len(open_actions):
                form.actions.append_entry()
            for entry, a in zip(form.actions, open_actions, strict=False):
                entry.form.text.data, entry.form.owner_id.data, entry.form.due_on.data = a.text, a.owner_id, a.due_on
    for entry in form.actions:
        entry.form.owner_id.choices = owner_choices
    status = 200
    if form.validate_on_submit():
        data = service.PlanData(
            review_date=form.review_date.data,
            goals=[line for line in (form.goals.data or "").splitlines() if line.strip()],
            actions=[service.ActionData(e.form.text.data, e.form.owner_id.data or None, e.form.due_on.data)
                     for e in form.actions if (e.form.text.data or "").strip()],
        )
        try:
            service.save_plan(db.session, _me(), c.id, form.version.data, data)
            db.session.commit()
            flash(_("The support plan was saved."), "success")
            return _back_to_case(c.id)
        except NotFound:
            abort(404)
        except CaseworkError as err:
            c, status = _form_refused(err, form, case_id, "casework.plan")
    elif request.method == "POST":
        status = 400
    return _render("casework/plan.html", case=c, form=form, plan=existing), status


@bp.route("/actions/<int:action_id>/done", methods=["POST"])
@allow(SCHOOL_STAFF)
def action_done(action_id: int):
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        act = service.complete_action(db.session, _me(), action_id)
    except NotFound:
        abort(404)
    except CaseworkError as err:
        db.session.rollback()
        flash(str(err.message), "error")
        return redirect(url_for("casework.tasks"))
    db.session.commit()
    flash(_("The action is marked done."), "success")
    return _back_to_case(act.case_id)


# -- referrals ------------------------------------------------------------------------------


@bp.route("/<int:case_id>/referrals", methods=["POST"])
@allow(LEAD)
def refer(case_id: int):
    form = ReferralForm()
    try:
        c = service.read_case(db.session, _me(), case_id, "casework.referral")
    except NotFound:
        abort(404)
    _referral_choices(form, c.school_id)
    if form.validate_on_submit():
        try:
            service.refer(db.session, _me(), c.id, form.target.data,
                          receiver_id=form.receiver_id.data or None, service_id=form.service_id.data or None,
                          reason=form.reason.data)
            db.session.commit()
            flash(_("The referral was made. The receiver will accept or reject it."), "success")
            return _back_to_case(c.id)
        except NotFound:
            abort(404)
        except service.ConsentRefused as err:
            db.session.commit()  # nothing changed but the audit row of the refusal
            c = service.read_case(db.session, _me(), case_id, "casework.referral")
            _apply_error(form, err)
        except CaseworkError as err:
            db.session.rollback()
            c = service.read_case(db.session, _me(), case_id, "casework.referral")
            _apply_error(form, err)
    ctx = _case_context(c, referral_form=form)
    return _render("casework/case.html", **ctx), 400


@bp.route("/referrals")
@allow("counsellor", "social_worker")
def referrals():
    rows = service.referrals_to(db.session, _me())
    return _render("casework/referrals.html", rows=rows, form=RespondForm())


@bp.route("/referrals/<int:referral_id>/respond", methods=["POST"])
@allow(PLANNERS)
def referral_respond(referral_id: int):
    form = RespondForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        r = service.respond(db.session, _me(), referral_id, accept=bool(form.accept.data), note=form.note.data)
    except NotFound:
        abort(404)
    except CaseworkError as err:
        db.session.rollback()
        flash(str(err.message), "error")
        return redirect(request.referrer or url_for("casework.referrals"))
    db.session.commit()
    flash(_("Your answer was recorded."), "success")
    return _back_to_case(r.case_id)


def _finish(referral_id: int, revoke: bool):
    form = RespondForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        r = service.finish_referral(db.session, _me(), referral_id, revoke=revoke)
    except NotFound:
        abort(404)
    except CaseworkError as err:
        db.session.rollback()
        flash(str(err.message), "error")
        return redirect(request.referrer or url_for("casework.register"))
    db.session.commit()
    flash(_("Saved."), "success")
    return _back_to_case(r.case_id)


@bp.route("/referrals/<int:referral_id>/done", methods=["POST"])
@allow(PLANNERS)
def referral_done(referral_id: int):
    return _finish(referral_id, revoke=False)


@bp.route("/referrals/<int:referral_id>/revoke", methods=["POST"])
@allow(LEAD)
def referral_revoke(referral_id: int):
    return _finish(referral_id, revoke=True)


# -- meetings ----------------------------------------------------------------------------------


@bp.route("/meetings", methods=["GET", "POST"])
@allow(LEAD)
def meetings():
    schools, _sid = _school_choice()
    form = MeetingForm()
    form.school_id.choices = [SelectChoice(s.id, s.name) for s in schools]
    if request.method == "GET":
        form.held_on.data = service.tokyo_today()
    status = 200
    if form.validate_on_submit():
        try:
            m = service.create_meeting(db.session, _me(), form.school_id.data, form.held_on.data)
            db.session.commit()
            return redirect(url_for("casework.meeting", meeting_id=m.id))
        except NotFound:
            abort(404)
        except CaseworkError as err:
            db.session.rollback()
            _apply_error(form, err)
            status = 400
    elif request.method == "POST":
        status = 400
    rows = service.meetings_for(db.session, _me())
    return _render("casework/meetings.html", rows=rows, form=form), status


def _meeting_forms(m, attendees_form=None, list_form=None):
    staff = service.school_staff(db.session, m.school_id)
    attendees_form = attendees_form or AttendeesForm(data={
        "attendees": [a.staff_id for a in m.attendees], "other_attendees": m.other_attendees})
    attendees_form.attendees.choices = [SelectChoice(s.id, s.name) for s in staff]
    list_form = list_form or ListCaseForm()
    listed = {i.case_id for i in m.items}
    ready = [c for c in service.cases_ready_for_meeting(db.session, _me(), m.school_id) if c.id not in listed]
    names = reports_child_names([c.child_id for c in ready] + [i.child_id for i in m.items])
    list_form.case_id.choices = [
        SelectChoice(c.id, f"{names.get(c.child_id, '')}（{labels.label(labels.STATUS, c.status)}）") for c in ready
    ]
    latest = service.latest_assessments(db.session, [i.case_id for i in m.items])
    decisions = {}
    for i in m.items:
        a = latest.get(i.case_id)
        proposed = {"support_needed": "support_plan", "keep_watching": "keep_watching", "no_concern": "close"}
        decisions[i.case_id] = DecisionForm(
            data={"case_id": i.case_id, "version": i.case.version,
                  "decision": proposed.get(a.proposal.value) if a else None,
                  "review_date": a.review_date if a else None},
            prefix=f"d{i.case_id}")
    return attendees_form, list_form, decisions, names, latest


def reports_child_names(child_ids) -> dict[int, str]:
    from portal.people.models import Child

    if not child_ids:
        return {}
    return dict(db.session.execute(select(Child.id, Child.name).where(Child.id.in_(set(child_ids)))).all())


@bp.route("/meetings/<int:meeting_id>", methods=["GET", "POST"])
@allow(LEAD)
def meeting(meeting_id: int):
    try:
        m = service.get_meeting(db.session, _me(), meeting_id)
    except NotFound:
        abort(404)
    status = 200
    if request.method == "POST":
        attendees_form, list_form, *_rest = _meeting_forms(m, AttendeesForm(), ListCaseForm())
        try:
            if attendees_form.submit_attendees.data and attendees_form.validate_on_submit():
                service.set_attendees(db.session, _me(), m.id, attendees_form.attendees.data or [],
                                      attendees_form.other_attendees.data)
            elif list_form.submit_list.data and list_form.validate_on_submit():
                service.list_case(db.session, _me(), m.id, list_form.case_id.data)
            else:
                raise CaseworkError(_("Please check the form."))
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("casework.meeting", meeting_id=m.id))
        except NotFound:
            abort(404)
        except CaseworkError as err:
            db.session.rollback()
            m = service.get_meeting(db.session, _me(), meeting_id)
            flash(str(err.message), "error")
            status = 400
    attendees_form, list_form, decisions, names, latest = _meeting_forms(m)
    service.audit_reads(db.session, _me(), [i.child_id for i in m.items], "casework.meeting")
    return _render("casework/meeting.html", meeting=m, attendees_form=attendees_form, list_form=list_form,
                           decisions=decisions, names=names, latest=latest), status


@bp.route("/meetings/<int:meeting_id>/decide", methods=["POST"])
@allow(LEAD)
def decide(meeting_id: int):
    case_id = request.form.get("case_id", type=int)
    if case_id is None:
        abort(400)
    form = DecisionForm(prefix=f"d{case_id}")
    if not form.validate_on_submit():
        db.session.rollback()
        errors = [e for f in form for e in f.errors]
        flash(str(errors[0]) if errors else _("Please check the form."), "error")
        return redirect(url_for("casework.meeting", meeting_id=meeting_id))
    try:
        service.decide(db.session, _me(), meeting_id, case_id, form.version.data, form.decision.data,
                       form.note.data, form.review_date.data)
    except NotFound:
        abort(404)
    except CaseworkError as err:
        db.session.rollback()
        flash(str(err.message), "error")
        return redirect(url_for("casework.meeting", meeting_id=meeting_id))
    db.session.commit()
    flash(_("The decision was recorded and the teacher was told."), "success")
    return redirect(url_for("casework.meeting", meeting_id=meeting_id))


@bp.route("/meetings/<int:meeting_id>/summary.pdf")
@allow(LEAD)
def meeting_pdf(meeting_id: int):
    try:
        m = service.get_meeting(db.session, _me(), meeting_id)
    except NotFound:
        abort(404)
    pdf = reports.meeting_pdf(db.session, _me(), m, _locale())
    filename = f"case-meeting-{m.held_on.isoformat()}.pdf"
    db.session.commit()
    return pdf, 200, {
        "Content-Type": "application/pdf",
        "Content-Disposition": f'attachment; filename="{filename}"',
    }


# -- tasks, dashboards, notices -------------------------------------------------------------------


@bp.route("/tasks", endpoint="tasks")
@allow(SCHOOL_STAFF)
def tasks_page():
    today = service.tokyo_today()
    mine = tasks.tasks_for(db.session, _me(), mine=True, today=today)
    school = tasks.tasks_for(db.session, _me(), mine=False, today=today, overdue_only=True) \
        if current_user.role == Role.school_lead else []
    return _render("casework/tasks.html", mine=mine, school=school, by_person=tasks.overdue_by_person(school),
                   today=today)


@bp.route("/dashboard")
@allow(SCHOOL_STAFF)
def dashboard():
    schools, sid = _school_choice()
    d = reports.dashboard(db.session, _me(), school_id=sid)
    return _render("casework/dashboard.html", d=d, schools=schools, school_id=sid)


@bp.route("/municipality")
@allow("coordinator")
def municipality():
    rows = reports.municipality(db.session, _me())
    total = reports.Dashboard(by_status={s.value: sum(r.by_status[s.value] for r in rows) for s in CaseStatus})
    total.open_cases = sum(r.open_cases for r in rows)
    total.overdue_tasks = sum(r.overdue_tasks for r in rows)
    total.decided = sum(r.decided for r in rows)
    return _render("casework/municipality.html", rows=rows, total=total)


@bp.route("/municipality.csv")
@allow("coordinator")
def municipality_csv():
    rows = reports.municipality(db.session, _me())
    header, body = reports.municipality_csv(rows)
    db.session.commit()
    return csv_response(f"cases-by-school-{service.tokyo_today().isoformat()}.csv", header, body)


@bp.route("/notices")
@allow(SCHOOL_STAFF)
def notices():
    rows = service.notices_for(db.session, _me())
    return _render("casework/notices.html", rows=rows, form=VersionForm())


@bp.route("/notices/read", methods=["POST"])
@allow(SCHOOL_STAFF)
def notices_read():
    form = RespondForm()
    if not form.validate_on_submit():
        abort(400)
    service.mark_read(db.session, _me())
    db.session.commit()
    return redirect(url_for("casework.notices"))

