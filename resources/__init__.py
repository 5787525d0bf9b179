"""Local support resources (HSDS 3.0 shaped catalogue) and campaigns to every family.

Depends on the kernel only: never on consent, surveys or screening.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l


def init_app(app) -> None:
    from portal import nav
    from portal.auth.access import ANONYMOUS, GUARDIAN, STUDENT
    from resources import campaigns, service, taxonomy

    app.jinja_env.globals.update(
        schedule_text=service.schedule_text,
        ages_text=service.ages_text,
        category_label=taxonomy.label,
        status_label=taxonomy.status_label,
        language_label=lambda code: service.LANGUAGES.get(code, code),
        error_label=campaigns.error_label,
    )
    nav.register(_l("Local support"), "resources.browse", (ANONYMOUS, GUARDIAN, STUDENT), 40)
    nav.register(_l("Inbox"), "resources.inbox", (GUARDIAN,), 45)
    nav.register(_l("Resource catalogue"), "resources.manage", ("coordinator",), 40)
    nav.register(_l("Campaigns"), "resources.campaigns", ("coordinator",), 45)
    nav.register(_l("Letters to print"), "resources.letters_home", ("teacher", "school_lead"), 60)
    _register_job(app)


def _register_job(app) -> None:
    """Every five minutes the scheduler queues due campaigns and sends queued e-mails."""
    from portal.scheduler import register_job

    register_job("resources.send_due_campaigns", "resources.jobs:send_due", {"trigger": "interval", "minutes": 5})
