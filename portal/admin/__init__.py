"""The administrator's face: staff accounts, roles and school scopes."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

# Pages a staff member who must choose a new password may still use.
_ALLOWED_WHILE_CHANGING = {"admin.change_password", "auth.sign_out", "auth.set_language", "static"}


def init_app(app) -> None:
    from flask import redirect, request, url_for
    from flask_login import current_user

    from portal import nav
    from portal.auth.access import STAFF_ROLES
    from portal.extensions import db
    from portal.people.models import Role, Staff

    nav.register(_l("Staff accounts"), "admin.staff_list", (Role.administrator.value,), 80)
    nav.register(_l("My password"), "admin.change_password", STAFF_ROLES, 950)

    @app.before_request
    def _require_own_password():
        """After a temporary password, the first thing is choosing one's own."""
        if not getattr(current_user, "is_staff", False) or request.endpoint in _ALLOWED_WHILE_CHANGING:
            return None
        if request.endpoint is None:
            return None
        staff = db.session.get(Staff, current_user.id)  # already loaded by the user loader
        if staff is not None and staff.password_change_required:
            return redirect(url_for("admin.change_password"))
        return None
