from __future__ import annotations

from flask import Blueprint, redirect, render_template
from flask_login import current_user

from portal.auth.access import public

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
    return {"status": "ok"}
