from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from portal.auth.access import allow
from portal.extensions import db
from portal.people import service as people
from portal.people.models import Child

bp = Blueprint("student", __name__, url_prefix="/student")


@bp.route("/")
@allow("student")
def home():
    child = db.session.get(Child, current_user.id)
    cls = people.current_class_of(db.session, child.id)
    return render_template("student/home.html", child=child, school_class=cls)
