"""Screening pages: the flag queue, a child's flags, rule sets (four eyes), runs, evaluation."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from backoffice.screening import evaluation as ev
from backoffice.screening import model as ml
from backoffice.screening import service
from backoffice.screening.forms import ManualFlagForm, ResolveForm, ReviewForm, RuleSetForm
from backoffice.screening.indicators import INDICATORS
from backoffice.screening.models import RuleSet, RuleSetStatus, ScreeningRun
from backoffice.screening.rules import DEMO_RULES
from backoffice.screening.service import ScreeningError
from portal.auth.access import SCHOOL_STAFF, allow, child_or_404
from portal.bodylimit import body_limit
from portal.extensions import db
from portal.tabular import csv_response

#: A rule set is up to 20,000 characters, up to 9 bytes each URL-encoded.
RULE_SET_BODY = 256 * 1024

bp = Blueprint("screening", __name__, url_prefix="/staff/screening", template_folder="templates")

QUEUE_ROLES = (*SCHOOL_STAFF, "data_steward")
STEWARD = ("data_steward",)
RULE_READERS = ("data_steward", "school_lead", "coordinator")
EVAL_ROLES = ("data_steward", "analyst", "school_lead", "coordinator")


def _locale() -> str:
    return str(get_locale() or "ja")


def _fail(err: ScreeningError, endpoint: str, **kw):
    db.session.rollback()
    flash(str(err), "error")
    return redirect(url_for(endpoint, **kw))


# -- the teacher's queue and a child's flags --------------------------------------


@bp.route("/")
@allow(QUEUE_ROLES)
def queue():
    entries = service.queue(db.session, current_user)
    db.session.commit()  # the audited reads
    return render_template("screening/queue.html", entries=entries, locale=_locale(),
                           describe=service.describe_reasons, factors=service.describe_factors)


@bp.route("/child/<int:child_id>", methods=["GET", "POST"])
@allow(QUEUE_ROLES)
def child(child_id: int):
    kid = child_or_404(db.session, current_user, child_id)
    form = ManualFlagForm()
    if form.validate_on_submit():
        try:
            service.raise_manual_flag(db.session, current_user, kid.id, form.reason.data, urgency=int(form.urgency.data))
            db.session.commit()
        except ScreeningError as err:
            db.session.rollback()
            form.reason.errors.append(str(err))
        else:
            flash(_("The flag is in the queue."), "success")
            return redirect(url_for("screening.child", child_id=kid.id))
    flags = service.flags_for_child(db.session, current_user, kid.id)
    db.session.commit()  # the audited read
    return render_template("screening/child.html", child=kid, flags=flags, form=form, resolve_form=ResolveForm(),
                           locale=_locale(), describe=service.describe_reasons, factors=service.describe_factors)


@bp.route("/flag/<int:flag_id>/resolve", methods=["POST"])
@allow(QUEUE_ROLES)
def resolve(flag_id: int):
    form = ResolveForm()
    child_id = request.form.get("child_id", type=int)
    if not form.validate_on_submit():
        flash(form.outcome.errors[0] if form.outcome.errors else _("Check the form."), "error")
    else:
        try:
            flag = service.resolve_flag(db.session, current_user, flag_id, form.reason.data or "", outcome=form.outcome.data)
            child_id = flag.child_id
            db.session.commit()
            flash(_("The decision is recorded."), "success")
        except service.FlagNotFound:
            db.session.rollback()
            abort(404)
        except ScreeningError as err:
            db.session.rollback()
            flash(str(err), "error")
    if child_id:
        return redirect(url_for("screening.child", child_id=child_id))
    return redirect(url_for("screening.queue"))


@bp.route("/indicators")
@allow(QUEUE_ROLES, RULE_READERS, EVAL_ROLES)
def indicators():
    return render_template("screening/indicators.html", indicators=INDICATORS.values())


# -- rule sets ------------------------------------------------------------------------


@bp.route("/rules")
@allow(RULE_READERS)
def rule_sets():
    sets = db.session.scalars(select(RuleSet).order_by(RuleSet.version.desc())).all()
    runs = db.session.scalars(select(ScreeningRun).order_by(ScreeningRun.id.desc()).limit(5)).all()
    return render_template("screening/rule_sets.html", sets=sets, runs=runs, active=service.active_rule_set(db.session),
                           can_edit=current_user.role in service.EDITOR_ROLES)


@bp.route("/rules/new", methods=["GET", "POST"])
@allow(STEWARD)
@body_limit(RULE_SET_BODY)
def rule_set_new():
    form = RuleSetForm()
    if request.method == "GET":
        active = service.active_rule_set(db.session)
        form.source.data = active.source if active else DEMO_RULES
    if form.validate_on_submit():
        try:
            rs = service.draft_rule_set(db.session, current_user, form.title.data, form.source.data)
            db.session.commit()
        except ScreeningError as err:
            db.session.rollback()
            form.source.errors.append(str(err))
        else:
            flash(_("Draft saved as version %(v)s.", v=rs.version), "success")
            return redirect(url_for("screening.rule_set", rule_set_id=rs.id))
    return render_template("screening/rule_set_form.html", form=form, rs=None, indicators=INDICATORS.values())


@bp.route("/rules/<int:rule_set_id>", methods=["GET", "POST"])
@allow(RULE_READERS)
@body_limit(RULE_SET_BODY)
def rule_set(rule_set_id: int):
    rs = db.session.get(RuleSet, rule_set_id) or abort(404)
    editable = (rs.status in (RuleSetStatus.draft, RuleSetStatus.rejected) and rs.author_staff_id == current_user.id
                and current_user.role in service.EDITOR_ROLES)
    form = RuleSetForm(obj=rs) if editable else None
    if editable and form.validate_on_submit():
        try:
            service.update_rule_set(db.session, current_user, rs.id, form.title.data, form.source.data)
            db.session.commit()
        except ScreeningError as err:
            db.session.rollback()
            form.source.errors.append(str(err))
        else:
            flash(_("Draft saved."), "success")
            return redirect(url_for("screening.rule_set", rule_set_id=rs.id))
    elif request.method == "POST":
        abort(403)
    return render_template("screening/rule_set.html", rs=rs, form=form, review=ReviewForm(),
                           indicators=INDICATORS.values())


def _rule_action(rule_set_id: int, fn, message: str):
    form = ReviewForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        fn(db.session, current_user, rule_set_id, *([form.note.data or ""] if fn in _NOTED else []))
        db.session.commit()
    except ScreeningError as err:
        return _fail(err, "screening.rule_set", rule_set_id=rule_set_id)
    flash(message, "success")
    return redirect(url_for("screening.rule_set", rule_set_id=rule_set_id))


_NOTED = (service.approve_rule_set, service.reject_rule_set)


@bp.route("/rules/<int:rule_set_id>/submit", methods=["POST"])
@allow(STEWARD)
def rule_set_submit(rule_set_id: int):
    return _rule_action(rule_set_id, service.submit_rule_set, _("Sent for approval. A second person must approve it."))


@bp.route("/rules/<int:rule_set_id>/approve", methods=["POST"])
@allow(service.APPROVER_ROLES)
def rule_set_approve(rule_set_id: int):
    return _rule_action(rule_set_id, service.approve_rule_set, _("Approved: this version is now active."))


@bp.route("/rules/<int:rule_set_id>/reject", methods=["POST"])
@allow(service.APPROVER_ROLES)
def rule_set_reject(rule_set_id: int):
    return _rule_action(rule_set_id, service.reject_rule_set, _("Sent back to its author."))


@bp.route("/run", methods=["POST"])
@allow(STEWARD)
def run():
    form = ReviewForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        r = service.run_screening(db.session, current_user, trigger="page")
        db.session.commit()
    except ScreeningError as err:
        return _fail(err, "screening.rule_sets")
    flash(_("Screening ran over %(n)s children: %(new)s new flags, %(cleared)s cleared.",
            n=r.counts["children"], new=r.counts["new_flags"], cleared=r.counts["cleared"]), "success")
    return redirect(url_for("screening.rule_sets"))


# -- evaluation and the model ----------------------------------------------------------


def _suppress() -> bool:
    return current_user.role == "analyst"


@bp.route("/evaluation")
@allow(EVAL_ROLES)
def evaluation():
    stats = ev.rule_stats(db.session, suppress=_suppress())
    latest = ml.latest_model(db.session)
    card = ev.suppress_card(latest.card) if latest and _suppress() else (latest.card if latest else None)
    return render_template("screening/evaluation.html", stats=stats, latest=latest, card=card,
                           form=ReviewForm(), can_train=current_user.role in STEWARD, min_cell=ev.MIN_CELL,
                           indicators=INDICATORS)


@bp.route("/evaluation.csv")
@allow(EVAL_ROLES)
def evaluation_export():
    latest = ml.latest_model(db.session)
    card = (ev.suppress_card(latest.card) if _suppress() else latest.card) if latest else None
    header, rows = ev.report_rows(ev.rule_stats(db.session, suppress=_suppress()), card)
    return csv_response("screening-evaluation.csv", header, rows)


@bp.route("/model/<int:model_id>/card.md")
@allow(EVAL_ROLES)
def model_card(model_id: int):
    """The generated model card as a document (Markdown), in the reader's language."""
    m = db.session.get(ml.ScreeningModel, model_id) or abort(404)
    card = ev.suppress_card(m.card) if _suppress() else m.card
    text = render_template("screening/model_card.txt", m=m, c=card, indicators=INDICATORS)
    return Response(text, mimetype="text/markdown",
                    headers={"Content-Disposition": f'attachment; filename="screening-model-{m.id}-card.md"'})


@bp.route("/model/train", methods=["POST"])
@allow(STEWARD)
def model_train():
    form = ReviewForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        m = ml.train(db.session, current_user)
        db.session.commit()
    except ScreeningError as err:
        return _fail(err, "screening.evaluation")
    if m.beats_baselines:
        flash(_("Model trained. It beats both baselines on held-out decisions: you may switch it on."), "success")
    else:
        flash(_("Model trained, but it does not beat both baselines on held-out decisions, so it stays off."), "info")
    return redirect(url_for("screening.evaluation"))


@bp.route("/model/<int:model_id>/switch", methods=["POST"])
@allow(STEWARD)
def model_switch(model_id: int):
    form = ReviewForm()
    if not form.validate_on_submit():
        abort(400)
    on = request.form.get("on") == "1"
    try:
        ml.switch(db.session, current_user, model_id, on)
        db.session.commit()
    except ScreeningError as err:
        return _fail(err, "screening.evaluation")
    flash(_("The model is on: it orders the queue and shows main factors.") if on else _("The model is off."), "success")
    return redirect(url_for("screening.evaluation"))
