"""Pages: the student check-in, the family questionnaire, staff views and alerts."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from portal.auth.access import SCHOOL_STAFF, allow, visible_school_ids
from portal.extensions import db
from portal.i18n import local_date
from portal.orm import utcnow
from portal.people.models import School
from surveys import instruments, reads, scheduling, scoring, service
from surveys.charts import trend_chart
from surveys.forms import (
    AckForm,
    AnswerForm,
    ClosedDaysForm,
    ScheduleForm,
    ScheduleTimesForm,
    TalkForm,
)
from surveys.instruments import ONE_PER_SCREEN_MAX_GRADE, RUBY_MAX_GRADE, localized, render_text
from surveys.models import ClosedDay, Frequency, SignalKind, SurveySchedule

bp = Blueprint(
    "surveys", __name__, template_folder="templates", static_folder="static", static_url_path="/surveys/static"
)
LEADS = ("school_lead", "coordinator")


def clock() -> datetime:
    """The time the pages use (tests replace it)."""
    return utcnow()


@bp.app_template_filter("instrument_text")
def _instrument_text(text: dict, ruby: bool = False):
    return render_text(localized(text, _locale()), ruby=ruby)


@bp.app_template_global("instruments_title")
def _instruments_title(code: str) -> str:
    return instruments.plain_text(localized(instruments.get(code).title, _locale()))


@bp.app_template_global("is_chosen")
def _is_chosen(chosen, value: int) -> bool:
    if chosen is None:
        return False
    if isinstance(chosen, list | tuple):
        return str(value) in {str(c) for c in chosen}
    return str(chosen) == str(value)


@bp.app_template_global("signal_label")
def _signal_label(kind) -> str:
    return {
        SignalKind.low_mood_streak: _("Low mood on 3 of the last 5 check-ins"),
        SignalKind.who5_poor: _("WHO-5 at or below 50 (poor wellbeing)"),
        SignalKind.help_request: _("Asked to talk to someone"),
        SignalKind.critical_answer: _("Critical answer"),
        SignalKind.family_worries: _("Family reported worries"),
    }.get(kind, str(kind))


@bp.app_template_global("frequency_label")
def _frequency_label(freq, weekday=None) -> str:
    days = [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday")]
    if freq == Frequency.weekly and weekday is not None:
        return _("Weekly on %(day)s", day=days[weekday])
    return {Frequency.school_day: _("Every school day"), Frequency.termly: _("Once a term")}.get(freq, str(freq))


def _locale() -> str:
    from portal.i18n import select_locale

    return select_locale()


def _form_values(inst, form) -> dict:
    raw = {}
    for item in inst.items:
        if item.type == "multi":
            raw[item.id] = form.getlist(item.id)
        elif item.id in form:
            raw[item.id] = form.get(item.id)
    return raw


# -- student ----------------------------------------------------------------------


@bp.route("/student/checkins")
@allow("student")
def checkins():
    now = clock()
    rows = service.open_assignments(db.session, current_user, now)
    return render_template("surveys/student_list.html", rows=rows, talk_form=TalkForm(), now=now)


def _answer_page(view, form, *, step: int | None, errors: dict, values: dict, template: str):
    inst = view.instrument
    items = inst.items_for(view.grade)
    ruby = view.assignment.respondent == "student" and view.grade <= RUBY_MAX_GRADE and _locale() == "ja"
    return render_template(
        template,
        view=view,
        inst=inst,
        items=items,
        step=step,
        ruby=ruby,
        errors=errors,
        values=values,
        form=form,
    )


@bp.route("/student/checkins/<int:assignment_id>", methods=["GET", "POST"])
@allow("student")
def checkin(assignment_id: int):
    return _answer(assignment_id, "surveys/checkin.html", "surveys.checkin_done")


@bp.route("/family/questionnaires/<int:assignment_id>", methods=["GET", "POST"])
@allow("guardian")
def family_answer(assignment_id: int):
    return _answer(assignment_id, "surveys/family_answer.html", None)


def _answer(assignment_id: int, template: str, done_endpoint: str | None):
    now = clock()
    view = service.load_assignment(db.session, current_user, assignment_id)
    if view is None or not view.owned or not view.consented:
        abort(404)
    form = AnswerForm()
    one_per_screen = view.assignment.respondent == "student" and view.grade <= ONE_PER_SCREEN_MAX_GRADE
    items = view.instrument.items_for(view.grade)
    back = url_for("surveys.checkins" if done_endpoint else "surveys.family_list")
    try:
        service.answerable(view, now)
    except service.AnswerError as exc:
        flash(str(exc.message), "error" if view.assignment.status != "submitted" else "info")
        return redirect(back)
    progress = service.progress_of(view.assignment)
    step = None
    if one_per_screen:
        step = request.values.get("step", type=int)
        if step is None:  # resume at the first unanswered item
            step = next((i for i, it in enumerate(items) if it.id not in progress), len(items) - 1)
        step = max(0, min(step, len(items) - 1))
    if request.method == "GET":
        return _answer_page(view, form, step=step, errors={}, values=progress, template=template)
    if not form.validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(request.full_path)
    raw = _form_values(view.instrument, request.form)
    try:
        if one_per_screen and step < len(items) - 1:
            item = items[step]
            value, error = scoring.check_item(item, raw.get(item.id))
            if error is not None:
                return _answer_page(view, form, step=step, errors={item.id: error}, values=progress, template=template), 400
            service.save_progress(db.session, current_user, assignment_id, {item.id: raw.get(item.id)}, now)
            db.session.commit()
            return redirect(url_for(request.endpoint, assignment_id=assignment_id, step=step + 1))
        if request.form.get("action") == "save":
            service.save_progress(db.session, current_user, assignment_id, raw, now)
            db.session.commit()
            flash(_("Your answers are saved. You can finish later."), "success")
            return redirect(back)
        result = service.submit(db.session, current_user, assignment_id, raw, now, view=view)
        db.session.commit()
    except service.AnswerError as exc:
        db.session.rollback()
        if exc.errors:
            if one_per_screen:
                step = next((i for i, it in enumerate(items) if it.id in exc.errors), step)
            return _answer_page(view, form, step=step, errors=exc.errors, values={**progress, **raw}, template=template), 400
        flash(str(exc.message), "error")
        return redirect(back)
    if done_endpoint:
        return redirect(url_for(done_endpoint, assignment_id=assignment_id))
    flash(_("Thank you. Your answers were sent to the school."), "success")
    if result.duplicate:
        flash(_("You had already answered this questionnaire; your first answers were kept."), "info")
    return redirect(back)


@bp.route("/student/checkins/<int:assignment_id>/done")
@allow("student")
def checkin_done(assignment_id: int):
    response = db.session.scalar(reads.own_response(assignment_id, current_user.id))
    if response is None:
        abort(404)
    helper = service.who_to_expect(db.session, current_user.id) if (response.help_requested or response.critical) else None
    grade = service.people_grade(db.session, current_user.id)
    return render_template("surveys/checkin_done.html", response=response, helper=helper, ruby=(grade or 9) <= RUBY_MAX_GRADE)


@bp.route("/student/talk", methods=["POST"])
@allow("student")
def talk():
    form = TalkForm()
    if not form.validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(url_for("surveys.checkins"))
    try:
        service.talk_request(db.session, current_user, clock())
    except service.AnswerError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(url_for("surveys.checkins"))
    db.session.commit()
    return redirect(url_for("surveys.talk_sent"))


@bp.route("/student/talk/sent")
@allow("student")
def talk_sent():
    helper = service.who_to_expect(db.session, current_user.id)
    grade = service.people_grade(db.session, current_user.id)
    return render_template("surveys/talk_sent.html", helper=helper, ruby=(grade or 9) <= RUBY_MAX_GRADE)


# -- guardian -----------------------------------------------------------------------


@bp.route("/family/questionnaires")
@allow("guardian")
def family_list():
    rows = service.open_assignments(db.session, current_user, clock())
    return render_template("surveys/family_list.html", rows=rows)


# -- staff --------------------------------------------------------------------------


@bp.route("/staff/checkins")
@allow(SCHOOL_STAFF)
def today():
    now = clock()
    classes = service.classes_for(db.session, current_user)
    class_id = request.args.get("class_id", type=int)
    chosen = next((c for c in classes if c.id == class_id), classes[0] if classes else None)
    rows = service.class_today(db.session, current_user, chosen.id, now) if chosen else []
    db.session.commit()  # the audit rows of what the page shows
    return render_template("surveys/staff_today.html", classes=classes, chosen=chosen, rows=rows, now=now)


@bp.route("/staff/checkins/children/<int:child_id>")
@allow(SCHOOL_STAFF)
def child(child_id: int):
    now = clock()
    data = service.child_answers(db.session, current_user, child_id, now)
    if data is None:
        abort(404)
    charts = {code: trend_chart(points, instruments.get(code), now) for code, points in data.trends.items()}
    db.session.commit()  # the audit row of the read
    return render_template(
        "surveys/staff_child.html", data=data, charts=charts, instruments=instruments, free_text_of=service.free_text_of
    )


@bp.route("/staff/alerts")
@allow(SCHOOL_STAFF)
def alerts():
    show_all = request.args.get("all") == "1"
    rows = service.alerts_for(db.session, current_user, include_done=show_all)
    db.session.commit()  # the audit rows
    return render_template(
        "surveys/staff_alerts.html",
        rows=rows,
        show_all=show_all,
        form=AckForm(),
        notes_visible=current_user.role in service.ACK_NOTE_ROLES,
    )


@bp.route("/staff/alerts/<int:alert_id>/ack", methods=["POST"])
@allow(SCHOOL_STAFF)
def alert_ack(alert_id: int):
    form = AckForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            flash(_("The form expired. Please try again."), "error")
        else:
            flash(_("Please write what you did or will do (at least a few words)."), "error")
        return redirect(url_for("surveys.alerts"))
    try:
        service.acknowledge(db.session, current_user, alert_id, form.note.data, clock())
    except LookupError:
        abort(404)
    except service.AnswerError as exc:
        db.session.rollback()
        flash(str(exc.message), "error")
        return redirect(url_for("surveys.alerts"))
    db.session.commit()
    flash(_("Alert acknowledged. Thank you for looking after the child."), "success")
    return redirect(url_for("surveys.alerts"))


def _schools():
    return list(db.session.scalars(select(School).where(School.id.in_(visible_school_ids(current_user))).order_by(School.code)))


@bp.route("/staff/surveys/schedules", methods=["GET", "POST"])
@allow(LEADS)
def schedules():
    schools = _schools()
    form = ScheduleForm()
    form.school_id.choices = [SelectChoice(s.id, s.name) for s in schools]
    form.instrument_code.choices = [SelectChoice(i.code, localized(i.title, _locale())) for i in instruments.all_instruments()]
    if form.validate_on_submit():
        data = _schedule_input(form, form.school_id.data, form.grade.data, form.instrument_code.data)
        try:
            scheduling.create_schedule(db.session, current_user, data)
        except scheduling.ScheduleError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("Schedule saved."), "success")
            return redirect(url_for("surveys.schedules"))
    rows = list(
        db.session.scalars(
            select(SurveySchedule)
            .where(SurveySchedule.school_id.in_([s.id for s in schools]), SurveySchedule.active.is_(True))
            .order_by(SurveySchedule.school_id, SurveySchedule.grade, SurveySchedule.instrument_code)
        )
    )
    status = 400 if request.method == "POST" else 200
    return render_template("surveys/staff_schedules.html", form=form, rows=rows, instruments=instruments, stop_form=TalkForm()), status


def _schedule_input(form, school_id: int, grade: int, instrument_code: str) -> scheduling.ScheduleInput:
    return scheduling.ScheduleInput(
        school_id=school_id,
        grade=grade,
        instrument_code=instrument_code,
        frequency=Frequency(form.frequency.data),
        weekday=int(form.weekday.data) if form.weekday.data not in (None, "") else None,
        window_start=form.window_start.data,
        window_end=form.window_end.data,
        days_open=form.days_open.data or 0,
        reminder_minutes=form.reminder_minutes.data,
        starts_on=form.starts_on.data,
        ends_on=form.ends_on.data,
    )


def _own_schedule(schedule_id: int) -> SurveySchedule:
    sched = db.session.get(SurveySchedule, schedule_id)
    if sched is None or sched.school_id not in {s.id for s in _schools()}:
        abort(404)
    return sched


@bp.route("/staff/surveys/schedules/<int:schedule_id>/edit", methods=["GET", "POST"])
@allow(LEADS)
def schedule_edit(schedule_id: int):
    sched = _own_schedule(schedule_id)
    if not sched.active:
        flash(_("This schedule was stopped and can no longer be changed."), "error")
        return redirect(url_for("surveys.schedules"))
    if request.method == "GET":
        form = ScheduleTimesForm(
            frequency=sched.frequency.value,
            weekday="" if sched.weekday is None else str(sched.weekday),
            window_start=sched.window_start,
            window_end=sched.window_end,
            days_open=sched.days_open,
            reminder_minutes=sched.reminder_minutes,
            starts_on=sched.starts_on,
            ends_on=sched.ends_on,
        )
    else:
        form = ScheduleTimesForm()
    if form.validate_on_submit():
        data = _schedule_input(form, sched.school_id, sched.grade, sched.instrument_code)
        try:
            changed = scheduling.update_schedule(db.session, current_user, sched, data)
        except scheduling.ScheduleError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            db.session.commit()
            if changed:
                flash(_("Schedule changed. Check-ins already open keep their times; the change applies from the next one."), "success")
            else:
                flash(_("Nothing was changed."), "info")
            return redirect(url_for("surveys.schedules"))
    status = 400 if request.method == "POST" else 200
    return render_template("surveys/staff_schedule_edit.html", form=form, sched=sched, instruments=instruments), status


@bp.route("/staff/surveys/schedules/<int:schedule_id>/stop", methods=["POST"])
@allow(LEADS)
def schedule_stop(schedule_id: int):
    sched = _own_schedule(schedule_id)
    if not TalkForm().validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(url_for("surveys.schedules"))
    scheduling.deactivate_schedule(db.session, current_user, sched)
    db.session.commit()
    flash(_("Schedule stopped."), "success")
    return redirect(url_for("surveys.schedules"))


@bp.route("/staff/surveys/closed-days", methods=["GET", "POST"])
@allow(LEADS)
def closed_days():
    schools = _schools()
    form = ClosedDaysForm()
    form.school_id.choices = [SelectChoice(s.id, s.name) for s in schools]
    if form.validate_on_submit():
        try:
            n = scheduling.add_closed_days(db.session, current_user, form.school_id.data, form.start.data, form.end.data, form.reason.data or "")
        except scheduling.ScheduleError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("%(n)d closed days added.", n=n), "success")
            return redirect(url_for("surveys.closed_days", school_id=form.school_id.data))
    school_id = request.args.get("school_id", type=int) or (form.school_id.data if form.school_id.data else None)
    school = next((s for s in schools if s.id == school_id), schools[0] if schools else None)
    now = clock()
    days = []
    if school is not None:
        from datetime import timedelta

        today = now.astimezone(scheduling.TOKYO).date()
        days = service.closed_days_list(db.session, school.id, today - timedelta(days=30), today + timedelta(days=365))
    status = 400 if request.method == "POST" else 200
    return render_template(
        "surveys/staff_closed_days.html", form=form, school=school, days=days, schools=schools, remove_form=TalkForm()
    ), status


@bp.route("/staff/surveys/closed-days/<int:closed_day_id>/remove", methods=["POST"])
@allow(LEADS)
def closed_day_remove(closed_day_id: int):
    day = db.session.get(ClosedDay, closed_day_id)
    if day is None or day.school_id not in {s.id for s in _schools()}:
        abort(404)
    school_id = day.school_id
    if not TalkForm().validate_on_submit():
        flash(_("The form expired. Please try again."), "error")
        return redirect(url_for("surveys.closed_days", school_id=school_id))
    when = day.day
    scheduling.remove_closed_day(db.session, current_user, school_id, when)
    db.session.commit()
    flash(_("%(day)s is a school day again.", day=local_date(when)), "success")
    return redirect(url_for("surveys.closed_days", school_id=school_id))
