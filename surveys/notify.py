"""E-mail for help alerts and reminders.

Messages name no child: they say that something is waiting and link to the
back-office, where access rules and the audit log apply. Each message is in
the recipient's language. A failed delivery is logged (without content) and
never undoes the alert, which the back-office list shows anyway.
"""

from __future__ import annotations

import logging

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import mail
from portal.people.models import Guardian, GuardianChild, Role, SchoolClass, Staff, StaffScope
from surveys.models import HelpAlert

log = logging.getLogger(__name__)


def _send(to: str, locale: str, subject_fn, body_fn) -> bool:
    with force_locale(locale or "ja"):
        msg = mail.build_message(to, subject_fn(), body_fn())
    try:
        mail.send(msg)
        return True
    except mail.MailError:
        log.warning("surveys: a notification could not be delivered")
        return False


def alert_recipients(session: Session, school_id: int, class_id: int | None) -> list[Staff]:
    """The homeroom teacher of the class and the school's counsellors (active accounts)."""
    counsellors = select(StaffScope.staff_id).where(StaffScope.school_id == school_id)
    teacher = select(SchoolClass.homeroom_teacher_id).where(SchoolClass.id == class_id)
    return list(
        session.scalars(
            select(Staff).where(
                Staff.active.is_(True),
                ((Staff.role == Role.counsellor) & Staff.id.in_(counsellors)) | Staff.id.in_(teacher),
            )
        )
    )


def school_leads(session: Session, school_id: int) -> list[Staff]:
    return list(
        session.scalars(
            select(Staff)
            .join(StaffScope, StaffScope.staff_id == Staff.id)
            .where(Staff.active.is_(True), Staff.role == Role.school_lead, StaffScope.school_id == school_id)
        )
    )


def _alert_url(alert: HelpAlert) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}/staff/alerts#alert-{alert.id}"


def alert_created(recipients: list[Staff], alert: HelpAlert) -> int:
    sent = 0
    for staff in recipients:
        sent += _send(
            staff.email,
            staff.locale,
            lambda: _("Mimamori: a child asked for help today"),
            lambda: _(
                "A child you look after asked to talk to someone, or gave an answer that needs attention, "
                "in today's check-in.\n\nPlease see the child today and acknowledge the alert with a note of "
                "what you did:\n%(url)s\n\nThe child's name is not written in this e-mail on purpose.",
                url=_alert_url(alert),
            ),
        )
    return sent


def alert_escalated(leads: list[Staff], alert: HelpAlert) -> int:
    sent = 0
    for staff in leads:
        sent += _send(
            staff.email,
            staff.locale,
            lambda: _("Mimamori: a help request has not been acknowledged"),
            lambda: _(
                "A child at your school asked for help and nobody has acknowledged the alert yet.\n\n"
                "Please make sure someone sees the child today:\n%(url)s",
                url=_alert_url(alert),
            ),
        )
    return sent


def remind_guardians(session: Session, child_ids: list[int]) -> int:
    rows = session.execute(
        select(Guardian.email, Guardian.locale)
        .join(GuardianChild, GuardianChild.guardian_id == Guardian.id)
        .where(GuardianChild.child_id.in_(child_ids), Guardian.email.is_not(None), Guardian.password_hash.is_not(None),
               Guardian.email_confirmed_at.is_not(None))
        .distinct()
    ).all()
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    sent = 0
    for email, locale in rows:
        sent += _send(
            email,
            locale,
            lambda: _("Mimamori: a questionnaire is waiting for you"),
            lambda: _(
                "The school's family questionnaire closes soon. It takes about five minutes:\n%(url)s",
                url=f"{base}/family/questionnaires",
            ),
        )
    return sent
