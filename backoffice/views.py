"""The staff face: the home page each staff role starts from."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from portal.auth.access import STAFF_ROLES, allow
from portal.extensions import db
from portal.people.models import Staff

bp = Blueprint("backoffice", __name__, url_prefix="/staff", template_folder="templates")


@bp.route("/")
@allow(STAFF_ROLES)
def home():
    staff = db.session.get(Staff, current_user.id)
    return render_template("backoffice/home.html", staff=staff)
