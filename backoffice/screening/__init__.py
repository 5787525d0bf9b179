"""Screening (issue 6): indicators, versioned rule sets (four eyes), flags, the optional model, evaluation."""

from __future__ import annotations


def init_app(app) -> None:
    from flask_babel import lazy_gettext as _l

    from consent import hooks
    from portal import nav
    from portal.scheduler import register_job

    from . import service

    hooks.register_purger("data_linkage", service.purge_linkage)
    hooks.register_purger("wellbeing_survey", service.purge_survey)
    hooks.register_disclosure_section("screening", _l("Screening flags"), service.disclosure_rows)
    nav.register(_l("Flags"), "screening.queue", ("teacher", "school_lead", "counsellor", "social_worker", "data_steward"), 15)
    nav.register(_l("Screening rules"), "screening.rule_sets", ("data_steward", "school_lead", "coordinator"), 45)
    nav.register(_l("Screening evaluation"), "screening.evaluation", ("data_steward", "analyst", "school_lead", "coordinator"), 46)
    register_job("screening.nightly", "backoffice.screening.jobs:nightly", {"trigger": "cron", "hour": 2, "minute": 30})
