"""E-mail about family accounts: confirmation, joining, adding a child, resets.

No message names a child (or anyone): a link leads to Mimamori, where access
rules apply. Each message is in its recipient's language, sent after the
transaction commits; a failed delivery is logged without content.
"""

from __future__ import annotations

import logging

from flask import current_app, render_template, url_for
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from portal import mail
from portal.auth.service import Notice, Registration

log = logging.getLogger(__name__)


def _link(endpoint: str, **values) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + url_for(endpoint, **values)


def _send(to: str, locale: str, subject, template: str, **context) -> bool:
    with force_locale(locale or "ja"):
        msg = mail.build_message(to, str(subject), render_template(template, **context))
    try:
        mail.send(msg)
        return True
    except mail.MailError:
        log.warning("auth: an account e-mail could not be delivered")
        return False


def registration(reg: Registration, *, locale: str | None = None) -> bool:
    """The one e-mail a registration sends, to the address that was entered."""
    to = reg.guardian.email
    if reg.outcome == "created":
        return _send(to, locale or reg.locale, _l("Mimamori: confirm your e-mail address"), "auth/mail/confirm.txt",
                     link=_link("auth.confirm_email", token=reg.token))
    if reg.outcome == "join":
        return _send(to, reg.locale, _l("Mimamori: finish creating your account"), "auth/mail/join.txt",
                     link=_link("auth.join_account", token=reg.token))
    if reg.outcome == "add_child":
        return _send(to, reg.locale, _l("Mimamori: you already have an account"), "auth/mail/add_child.txt",
                     link=_link("auth.add_child_link", token=reg.token))
    if reg.outcome == "already_linked":
        return _send(to, reg.locale, _l("Mimamori: you already have an account"), "auth/mail/already_linked.txt",
                     link=_link("auth.guardian_sign_in"))
    return _send(to, reg.locale, _l("Mimamori: an account could not be created"), "auth/mail/not_linked.txt",
                 link=_link("auth.guardian_sign_in"))


def confirmation(to: str, locale: str, token: str) -> bool:
    return _send(to, locale, _l("Mimamori: confirm your e-mail address"), "auth/mail/confirm.txt",
                 link=_link("auth.confirm_email", token=token))


def password_reset(to: str, locale: str, token: str) -> bool:
    return _send(to, locale, _l("Mimamori: resetting your password"), "auth/mail/password_reset.txt",
                 link=_link("auth.password_reset", token=token))


def child_added(notices: list[Notice]) -> int:
    """"A child was added to your account" (and to the child's other guardians). No name."""
    sent = 0
    link = _link("family.home")
    for n in notices:
        if n.own:
            sent += _send(n.email, n.locale, _l("Mimamori: a child was added to your account"),
                          "auth/mail/child_added.txt", link=link)
        else:
            sent += _send(n.email, n.locale, _l("Mimamori: another guardian account was linked to your child"),
                          "auth/mail/child_linked_other.txt", link=link)
    return sent
