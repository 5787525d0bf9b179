"""Students' sign-in cards: a printable A4 sheet per class, and each child's sign-in state.

Issuing a sheet gives every child of the class a new 6-digit PIN and a new
QR card token, so every earlier PIN and card of that class stops working
(and any student session of those children ends). Only argon2 hashes of the
PINs and HMAC digests of the tokens are stored: the sheet is the one place
they are ever shown, so it is made once, at the moment of issue.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib.colors import Color, black, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.audit import service as audit
from portal.auth import service as auth
from portal.auth.principal import Principal
from portal.orm import utcnow
from portal.people.models import Child, Enrolment, School, SchoolClass
from portal.people.pdf import DIGITS, GOTHIC, draw_qr, fit_size, register_fonts
from portal.people.roster import children_of_class

# 2 x 4 cards on a portrait A4 page, each a little larger than a business card.
COLUMNS, ROWS = 2, 4
CARDS_PER_PAGE = COLUMNS * ROWS
CARD_W, CARD_H = 95 * mm, 66 * mm
MARGIN_X = (A4[0] - COLUMNS * CARD_W) / 2
MARGIN_Y = (A4[1] - ROWS * CARD_H) / 2

GREY = Color(0.55, 0.55, 0.55)
BRAND = Color(0.06, 0.36, 0.33)


@dataclass(frozen=True)
class Card:
    child_id: int
    name: str
    name_kana: str
    student_no: str
    pin: str
    url: str
    locale: str


def issue_cards(
    session: Session,
    principal: Principal,
    school_class: SchoolClass,
    *,
    secret_key: str,
    card_url: str,
    request_id: str | None = None,
) -> list[Card]:
    """New PINs and QR cards for every child of the class; the old ones stop working.

    ``card_url`` is the absolute URL of the card sign-in page; the token is
    added as the fragment ``#t=``. The caller has checked that the principal manages the
    class (:func:`portal.people.roster.class_for`).
    """
    cards = []
    for child in children_of_class(session, school_class):
        pin = auth.new_pin()
        auth.set_student_pin(child, pin)  # also ends the child's open sessions
        token = auth.issue_card_token(child, secret_key)
        auth.clear_delay(child)
        # The token goes in the fragment, which browsers never send to a
        # server; the card page's script posts it and cleans the address.
        cards.append(
            Card(child.id, child.name, child.name_kana, child.student_no, pin, f"{card_url}#t={quote(token)}", child.locale)
        )
    session.flush()
    audit.record(
        session,
        principal,
        "people.cards_issued",
        detail={"class_id": school_class.id, "school_id": school_class.school_id, "cards": len(cards)},
        request_id=request_id,
    )
    # The sheet names every child on it: one audited read per child.
    audit.record_child_reads(session, principal, [c.child_id for c in cards], "people.cards", request_id=request_id)
    return cards


@dataclass(frozen=True)
class SignInRow:
    """One child's sign-in state as the class's teacher sees it (no secret, no count of guesses)."""

    child_id: int
    attendance_no: int | None
    name: str
    has_card: bool
    card_last_used_at: datetime | None
    card_revoked_at: datetime | None
    delayed: bool
    failed: bool


def sign_in_rows(session: Session, principal: Principal, school_class: SchoolClass, *, now: datetime | None = None,
                 request_id: str | None = None) -> list[SignInRow]:
    """The class's children with their card's last use and whether wrong PINs delay them; audited."""
    now = now or utcnow()
    rows = session.execute(
        select(Child, Enrolment.attendance_no)
        .join(Enrolment, Enrolment.child_id == Child.id)
        .where(Enrolment.class_id == school_class.id, Enrolment.school_year_id == school_class.school_year_id)
        .order_by(Enrolment.attendance_no, Child.name_kana, Child.id)
    ).all()
    out = [
        SignInRow(c.id, no, c.name, c.card_token_digest is not None, c.card_last_used_at, c.card_revoked_at,
                  auth.is_delayed(c, now), bool(c.failed_logins))
        for c, no in rows
    ]
    audit.record_child_reads(session, principal, [r.child_id for r in out], "people.sign_in_status", request_id=request_id)
    return out


def _child_of_class(session: Session, school_class: SchoolClass, child_id: int) -> Child | None:
    return session.scalar(
        select(Child)
        .join(Enrolment, Enrolment.child_id == Child.id)
        .where(Child.id == child_id, Enrolment.class_id == school_class.id,
               Enrolment.school_year_id == school_class.school_year_id)
    )


def revoke_child_card(session: Session, principal: Principal, school_class: SchoolClass, child_id: int, *,
                      request_id: str | None = None) -> bool | None:
    """Revoke one child's QR card (a lost card); the PIN and other cards keep working.

    None when the child is not in the class (the page answers 404); False
    when there was no card. Signed-in sessions of the child end too, since a
    lost card may have been used already.
    """
    child = _child_of_class(session, school_class, child_id)
    if child is None:
        return None
    if not auth.revoke_card(child):
        return False
    child.session_version += 1
    session.flush()
    audit.record(session, principal, "people.card_revoked", child_id=child.id,
                 detail={"class_id": school_class.id}, request_id=request_id)
    return True


def clear_child_delay(session: Session, principal: Principal, school_class: SchoolClass, child_id: int, *,
                      request_id: str | None = None) -> bool | None:
    """Let a child whose wrong PINs delay them try again at once. None: not in the class."""
    child = _child_of_class(session, school_class, child_id)
    if child is None:
        return None
    auth.clear_delay(child)
    session.flush()
    audit.record(session, principal, "people.sign_in_delay_cleared", child_id=child.id,
                 detail={"class_id": school_class.id}, request_id=request_id)
    return True


def class_label(school_class: SchoolClass) -> str:
    return _("Grade %(g)d, class %(c)s", g=school_class.grade_in_school, c=school_class.name)


def render_card_sheet(school: School, school_class: SchoolClass, cards: list[Card], *, locale: str = "ja") -> bytes:
    """The PDF: A4 portrait, 8 cards a page with cutting lines, large type.

    Each card is in its child's language; ``locale`` is the sheet's own.
    """
    with force_locale(locale):
        return _render_card_sheet(school, school_class, cards)


def _render_card_sheet(school: School, school_class: SchoolClass, cards: list[Card]) -> bytes:
    register_fonts()
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4, pageCompression=1)
    c.setTitle(_("Sign-in cards"))
    c.setSubject(f"{school.code} {school_class.grade}-{school_class.name}")
    c.setCreator("Mimamori")
    if not cards:
        c.setFont(GOTHIC, 14)
        c.drawString(MARGIN_X, A4[1] - MARGIN_Y, _("This class has no children."))
        c.showPage()
    for i, card in enumerate(cards):
        pos = i % CARDS_PER_PAGE
        if i and pos == 0:
            c.showPage()
        col, row = pos % COLUMNS, pos // COLUMNS
        x = MARGIN_X + col * CARD_W
        y = A4[1] - MARGIN_Y - (row + 1) * CARD_H
        with force_locale(card.locale):
            _draw_card(c, x, y, school, school_class, card)
    if cards:
        c.showPage()
    c.save()
    return buf.getvalue()


def _draw_card(c: Canvas, x: float, y: float, school: School, school_class: SchoolClass, card: Card) -> None:
    pad = 5 * mm
    qr_size = 34 * mm
    text_w = CARD_W - qr_size - 3 * pad

    # cutting line
    c.saveState()
    c.setStrokeColor(GREY)
    c.setLineWidth(0.5)
    c.setDash(3, 3)
    c.rect(x, y, CARD_W, CARD_H)
    c.restoreState()

    # header band: school and class
    band_h = 9 * mm
    c.setFillColor(BRAND)
    c.rect(x + 0.6, y + CARD_H - band_h - 0.6, CARD_W - 1.2, band_h, stroke=0, fill=1)
    c.setFillColor(white)
    school_name = school.name if card.locale == "ja" else (school.name_en or school.name)
    header = f"{school_name}  {class_label(school_class)}"
    size = fit_size(header, GOTHIC, 11, CARD_W - 2 * pad)
    c.setFont(GOTHIC, size)
    c.drawString(x + pad, y + CARD_H - band_h + 2.6 * mm, header)
    c.setFillColor(black)

    top = y + CARD_H - band_h - pad
    # name: kana above, name in large type
    if card.name_kana:
        c.setFont(GOTHIC, fit_size(card.name_kana, GOTHIC, 10, text_w))
        c.drawString(x + pad, top - 3.5 * mm, card.name_kana)
    name_size = fit_size(card.name, GOTHIC, 20, text_w)
    c.setFont(GOTHIC, name_size)
    c.drawString(x + pad, top - 11 * mm, card.name)

    # number and PIN, each with a simple label
    c.setFont(GOTHIC, 9)
    c.drawString(x + pad, top - 17.5 * mm, _("Your number"))
    c.setFont(DIGITS, fit_size(card.student_no, DIGITS, 18, text_w))
    c.drawString(x + pad, top - 24 * mm, card.student_no)
    c.setFont(GOTHIC, 9)
    c.drawString(x + pad, top - 30 * mm, _("Your PIN"))
    c.setFont(DIGITS, 24)
    c.drawString(x + pad, top - 38.5 * mm, card.pin)

    # QR code on the right, with a hint below it
    qx = x + CARD_W - pad - qr_size
    qy = y + pad + 3 * mm
    draw_qr(c, card.url, qx, qy, qr_size)
    hint = _("Scan to sign in")
    c.setFont(GOTHIC, fit_size(hint, GOTHIC, 8, qr_size))
    c.drawCentredString(qx + qr_size / 2, y + pad - 0.5 * mm, hint)
