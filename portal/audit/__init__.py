"""Append-only, hash-chained audit log."""

from flask_babel import lazy_gettext as _l


def init_app(app) -> None:
    from portal import nav
    from portal.people.models import Role

    nav.register(_l("Audit log"), "audit.log", (Role.data_steward.value,), 70)
