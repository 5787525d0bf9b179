"""Append-only, hash-chained audit log: keyed chain, sequencer, signed checkpoints."""

from flask_babel import lazy_gettext as _l


def init_app(app) -> None:
    from portal import nav
    from portal.people.models import Role
    from portal.scheduler import register_job

    nav.register(_l("Audit log"), "audit.log", (Role.data_steward.value,), 70)
    register_job("audit.sequence", "portal.audit.jobs:sequence", {"trigger": "interval", "minutes": 1})
    register_job("audit.checkpoint", "portal.audit.jobs:checkpoint", {"trigger": "interval", "hours": 1})
