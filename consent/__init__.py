"""Consent: purposes, versioned documents, events, the gate, data rights, transparency."""

from __future__ import annotations


def init_app(app) -> None:
    from flask_babel import lazy_gettext as _l

    from portal import nav
    from portal.people.models import Role

    nav.register(_l("Consent"), "consent.family_home", ["guardian"], 20)
    nav.register(_l("Requests about our data"), "consent.family_requests", ["guardian"], 60)
    nav.register(_l("My consent"), "consent.student_home", ["student"], 40)
    nav.register(_l("Consent purposes"), "consent.staff_purposes", [Role.data_steward.value], 50)
    nav.register(_l("Paper consent forms"), "consent.staff_paper", [Role.data_steward.value], 51)
    nav.register(_l("Data requests"), "consent.staff_requests", [Role.data_steward.value], 52)
    nav.register(_l("Consent coverage"), "consent.staff_coverage", [Role.data_steward.value, Role.coordinator.value], 53)

    from consent.anchor import check
    from portal.audit.service import register_anchor

    register_anchor("consent", check)

    try:
        from portal.scheduler import register_job
    except ImportError:  # the scheduler is optional
        return
    register_job("consent.purges", "consent.jobs:run_purges", {"trigger": "interval", "minutes": 15})
