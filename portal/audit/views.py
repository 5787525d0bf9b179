"""The data steward's audit log page."""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.audit import browse
from portal.audit.forms import AuditSearchForm
from portal.auth.access import allow
from portal.extensions import db
from portal.people.models import Role

bp = Blueprint("audit", __name__, url_prefix="/staff/audit", template_folder="templates")

STEWARD = Role.data_steward.value
PER_PAGE = 50


@bp.route("/")
@allow(STEWARD)
def log():
    form = AuditSearchForm(request.args)
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    rows, total, searched = [], 0, False
    if form.validate():
        filters = browse.Filters(
            action=(form.action.data or "").strip() or None,
            role=form.role.data or None,
            child_id=form.child_id.data,
            actor_id=form.actor_id.data,
            since=form.since.data,
            until=form.until.data,
        )
        rows, total = browse.search(db.session, current_user, filters, page=page, per_page=PER_PAGE,
                                    request_id=g.get("request_id"))
        db.session.commit()
        searched = True
    pages = max((total + PER_PAGE - 1) // PER_PAGE, 1)
    args = {k: v for k, v in request.args.items() if k != "page"}
    return render_template(
        "audit/log.html", form=form, rows=rows, total=total, page=page, pages=pages, args=args,
        searched=searched, actions=browse.known_actions(db.session),
    )


@bp.route("/verify", methods=["POST"])
@allow(STEWARD)
def verify():
    result = browse.verify_chain(db.session, current_user, request_id=g.get("request_id"))
    db.session.commit()
    if result.ok:
        flash(_("The audit chain is intact: %(n)d entries checked, and the signed checkpoints match. "
                "The %(u)d entries written after the last checkpoint can still be removed unseen until the next one.",
                n=result.checked, u=result.uncovered), "success")
    elif result.first_broken_id is not None:
        flash(_("The audit chain is broken at entry %(id)d (%(n)d entries before it are intact). Report this to the security officer.",
                id=result.first_broken_id, n=result.intact), "error")
    else:
        flash(_("The audit log failed its check: %(k)d problems, such as entries removed after a signed checkpoint. "
                "Report this to the security officer.", k=len(result.findings)), "error")
    return redirect(url_for("audit.log"))
