"""Back-office pages of linkage: upload with preview, history and report,
rollback, the review queue, and a child's linked records."""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from backoffice.linkage import jobs, service
from backoffice.linkage.catalogue import load
from backoffice.linkage.forms import ActionForm, ConfirmForm, UploadForm
from backoffice.linkage.importer import service as importer
from backoffice.linkage.models import ImportBatch, ImportJob
from portal.auth.access import allow, child_or_404
from portal.bodylimit import accepts_files
from portal.extensions import db
from portal.tabular import DEFAULT_MAX_BYTES, TabularError

bp = Blueprint("linkage", __name__, url_prefix="/staff/linkage", template_folder="templates",
               static_folder="static", static_url_path="/static/linkage")

STEWARD = ("data_steward",)


@bp.route("/", methods=["GET", "POST"])
@allow(STEWARD)
@accepts_files
def imports():
    form = UploadForm()
    if form.validate_on_submit():
        limit = current_app.config.get("LINKAGE_MAX_UPLOAD_BYTES", DEFAULT_MAX_BYTES)
        try:
            # The upload is spooled to disk by Werkzeug: its size is known
            # before a byte of it is read into memory.
            importer.refuse_if_too_large(importer.stream_size(form.file.data.stream), limit)
            data = form.file.data.stream.read(limit + 1)  # never more than the limit in memory
            preview = importer.preview(form.source.data, data, form.file.data.filename, max_bytes=limit)
        except TabularError as exc:
            form.file.errors.append(str(exc))
        else:
            digest = jobs.save_upload(current_app.instance_path, data)
            confirm = ConfirmForm(token=digest, source=form.source.data, rows=str(preview["total"]))
            return render_template("linkage/preview.html", preview=preview, confirm=confirm,
                                   filename=form.file.data.filename, row_errors=importer.ROW_ERRORS,
                                   locale=str(get_locale()))
    return render_template("linkage/imports.html", form=form, batches=service.history(db.session),
                           catalogue=load(), locale=str(get_locale()))


@bp.route("/confirm", methods=["POST"])
@allow(STEWARD)
def confirm():
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    if not jobs.upload_path(current_app.instance_path, form.token.data).exists():
        flash(_("The uploaded file has expired; upload it again."), "error")
        return redirect(url_for("linkage.imports"))
    job = jobs.create_job(db.session, current_user, form.source.data, form.token.data,
                          request.form.get("filename") or None, int(form.rows.data) if form.rows.data else None,
                          str(get_locale()))
    db.session.commit()
    jobs.start(current_app._get_current_object(), job.id)
    return redirect(url_for("linkage.job", job_id=job.id))


def _job_or_404(job_id: int) -> ImportJob:
    job = db.session.get(ImportJob, job_id)
    if job is None or job.actor_id != current_user.id:
        abort(404)
    if jobs.settle_interrupted(db.session, job):
        db.session.commit()
    return job


@bp.route("/jobs/<int:job_id>")
@allow(STEWARD)
def job(job_id: int):
    """The progress page: a <progress> bar kept fresh by linkage/job.js; the
    report once the import is done (without JavaScript: reload the page)."""
    j = _job_or_404(job_id)
    if j.status == "done":
        if j.already_imported:
            flash(_("This file was imported before (batch %(batch)s); nothing changed.", batch=j.batch_id), "info")
        return redirect(url_for("linkage.batch", batch_id=j.batch_id))
    return render_template("linkage/job.html", job=j, status=jobs.status(j), locale=str(get_locale()))


@bp.route("/jobs/<int:job_id>/status")
@allow(STEWARD)
def job_status(job_id: int):
    j = _job_or_404(job_id)
    data = jobs.status(j)
    data["report_url"] = url_for("linkage.job", job_id=j.id)
    resp = jsonify(data)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/batches/<int:batch_id>")
@allow(STEWARD)
def batch(batch_id: int):
    b = service.batch_detail(db.session, batch_id) or abort(404)
    return render_template("linkage/batch.html", batch=b, report=importer.Report.from_batch(b),
                           row_errors=importer.ROW_ERRORS, reasons=importer.DROP_REASONS,
                           methods=importer.METHODS, roster_counts=importer.ROSTER_COUNTS,
                           spec=load().source(b.source), locale=str(get_locale()), form=ActionForm())


@bp.route("/batches/<int:batch_id>/rollback", methods=["POST"])
@allow(STEWARD)
def rollback(batch_id: int):
    if not ActionForm().validate_on_submit():
        abort(400)
    db.session.get(ImportBatch, batch_id) or abort(404)
    try:
        removed = importer.rollback_batch(db.session, current_user, batch_id)
    except importer.AlreadyRolledBack as exc:
        db.session.rollback()
        flash(str(exc.message), "info")
        return redirect(url_for("linkage.batch", batch_id=batch_id))
    db.session.commit()
    flash(_("The batch was rolled back: %(n)s records removed.", n=removed), "success")
    return redirect(url_for("linkage.batch", batch_id=batch_id))


@bp.route("/review")
@allow(STEWARD)
def review_queue():
    items, total = service.open_items(db.session)
    return render_template("linkage/review_queue.html", items=items, total=total, catalogue=load(),
                           locale=str(get_locale()))


@bp.route("/review/<int:item_id>", methods=["GET", "POST"])
@allow(STEWARD)
def review_item(item_id: int):
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        decision = request.form.get("decision", "")
        child_id = request.form.get("child_id", type=int)
        try:
            service.decide(db.session, current_user, item_id, decision, child_id)
            db.session.commit()
        except service.ReviewError as exc:
            db.session.rollback()
            flash(str(exc.message), "error")
            return redirect(url_for("linkage.review_queue"))
        flash(_("Linked to the chosen child.") if decision == "link" else _("Rejected: the record was removed."), "success")
        return redirect(url_for("linkage.review_queue"))
    detail = service.review_detail(db.session, current_user, item_id)
    if detail is None:
        abort(404)
    db.session.commit()  # the audit rows of the read
    return render_template("linkage/review_item.html", d=detail, form=form, locale=str(get_locale()))


@bp.route("/children/<int:child_id>")
@allow(service.VIEW_ROLES)
def child_records(child_id: int):
    child = child_or_404(db.session, current_user, child_id)
    records = service.child_records(db.session, current_user, child)
    db.session.commit()
    return render_template("linkage/child.html", child=child, records=records, catalogue=load(),
                           methods=importer.METHODS,
                           locale=str(get_locale()))
