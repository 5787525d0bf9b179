"""Wellbeing check-ins and the family questionnaire (issue 5).

Instruments are versioned files in ``surveys/instruments``; schedules open
assignments for children with ``wellbeing_survey`` consent; answers are
scored into signals screening reads through the gate; a child's request for
help becomes an alert for the adults who can act on it today.
"""

from __future__ import annotations

import os

from flask import Flask
from flask_babel import lazy_gettext as _l


def init_app(app: Flask) -> None:
    from consent import hooks
    from portal import nav
    from portal.auth.access import SCHOOL_STAFF
    from portal.scheduler import register_job
    from surveys import service

    app.config.setdefault(
        "SURVEYS_ALERT_ESCALATE_MINUTES", int(os.environ.get("SURVEYS_ALERT_ESCALATE_MINUTES", "60"))
    )
    # Every minute: a check-in opens within a minute of its window (children
    # start at 08:00 sharp) and an alert escalates within a minute of its
    # deadline. Both jobs are set-based and idempotent, so a pass that finds
    # nothing to do costs a few indexed queries.
    register_job("surveys.tick", "surveys.jobs:tick", {"trigger": "interval", "minutes": 1})
    register_job("surveys.escalate", "surveys.jobs:escalate", {"trigger": "interval", "minutes": 1})
    hooks.register_purger("wellbeing_survey", service.purge_children)
    hooks.register_disclosure_section("surveys.checkins", _l("Wellbeing check-ins"), service.disclosure_checkins)
    hooks.register_disclosure_section("surveys.family", _l("Family questionnaire"), service.disclosure_family)
    hooks.register_file_register_source(service.file_register_entries)
    hooks.register_withheld_audit(service.withheld_audit)

    nav.register(_l("Check-in"), "surveys.checkins", ("student",), 20)
    nav.register(_l("Questionnaires"), "surveys.family_list", ("guardian",), 30)
    nav.register(_l("Check-ins"), "surveys.today", SCHOOL_STAFF, 20)
    nav.register(_l("Help requests"), "surveys.alerts", SCHOOL_STAFF, 21)
    nav.register(_l("Survey schedules"), "surveys.schedules", ("school_lead", "coordinator"), 60)
