"""Casework (issue 7): the teacher's queue, assessment, the school case meeting (校内委員会),
support plans, referrals, case life, tasks, dashboards and reports."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l


def init_app(app: Flask) -> None:
    from backoffice.casework import service
    from consent import hooks
    from portal import nav
    from portal.scheduler import register_job

    hooks.register_purger("data_linkage", service.purge_linkage)
    hooks.register_purger("wellbeing_survey", service.purge_survey)
    hooks.register_disclosure_section("casework", _l("Support cases at school"), service.disclosure_rows)
    hooks.register_disclosure_section("casework.assessments", _l("Teachers' assessments"), service.disclosure_assessments)
    hooks.register_file_register_source(service.file_register_entries)
    hooks.register_withheld_audit(service.withheld_audit)
    register_job("casework.daily", "backoffice.casework.tasks:daily",
                 {"trigger": "cron", "hour": 7, "minute": 30})

    nav.register(_l("My queue"), "casework.queue", ("teacher", "school_lead"), 10)
    nav.register(_l("Cases"), "casework.register", ("teacher", "school_lead", "counsellor", "social_worker"), 11)
    nav.register(_l("Tasks"), "casework.tasks", ("teacher", "school_lead", "counsellor", "social_worker"), 12)
    nav.register(_l("Case meetings"), "casework.meetings", ("school_lead",), 13)
    nav.register(_l("Referrals to me"), "casework.referrals", ("counsellor", "social_worker"), 14)
    nav.register(_l("Case dashboard"), "casework.dashboard", ("school_lead", "counsellor", "social_worker"), 15)
    nav.register(_l("Cases in the municipality"), "casework.municipality", ("coordinator",), 40)
    nav.register(_l("Notices"), "casework.notices", ("teacher", "school_lead", "counsellor", "social_worker"), 90)
