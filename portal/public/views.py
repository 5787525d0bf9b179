from __future__ import annotations

from flask import Blueprint, redirect, render_template
from flask_login import current_user

from portal.auth.access import public
from portal.public import service

bp = Blueprint("public", __name__)


@bp.route("/")
@public
def index():
    if current_user.is_authenticated:
        from portal.auth.views import home_for

        return redirect(home_for(current_user))
    return render_template("public/index.html")


@bp.route("/healthz")
@public
def healthz():
    """Liveness: the process answers (never touches the database)."""
    return {"status": "ok"}


@bp.route("/readyz")
@public
def readyz():
    """Readiness: the database answers a query (503 otherwise, for the proxy or orchestrator)."""
    from portal.extensions import db

    if not service.database_answers(db.session):
        return {"status": "unavailable", "database": "down"}, 503
    return {"status": "ok", "database": "ok"}
