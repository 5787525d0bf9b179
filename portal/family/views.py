from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from portal.auth.access import allow, child_or_404
from portal.extensions import db
from portal.people import service as people

bp = Blueprint("family", __name__, url_prefix="/family")


@bp.route("/")
@allow("guardian")
def home():
    children = people.children_of_guardian(db.session, current_user.id)
    return render_template("family/home.html", children=children)


@bp.route("/children/<int:child_id>")
@allow("guardian")
def child(child_id: int):
    child = child_or_404(db.session, current_user, child_id)
    cls = people.current_class_of(db.session, child.id)
    return render_template("family/child.html", child=child, school_class=cls)
