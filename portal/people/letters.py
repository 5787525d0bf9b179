"""Enrolment letters: one page per child whose family has no account yet.

Each letter carries a new one-time enrolment code (only its HMAC digest is
stored) and says, in the guardian's language, how to register. Printing a
class's letters again retires the earlier unused codes of those children, so
only the newest letter works.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib.colors import Color
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    ListFlowable,
    ListItem,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.audit import service as audit
from portal.auth import service as auth
from portal.auth.principal import Principal
from portal.i18n import local_date
from portal.orm import utcnow
from portal.people.models import (
    EnrolmentCode,
    Guardian,
    GuardianChild,
    Municipality,
    School,
    SchoolClass,
)
from portal.people.pdf import DIGITS, GOTHIC, draw_qr, register_fonts
from portal.people.roster import children_without_account

BRAND = Color(0.06, 0.36, 0.33)


@dataclass(frozen=True)
class Letter:
    child_id: int
    child_name: str
    guardian_name: str
    code: str
    expires_at: datetime
    locale: str


def _letter_locale(session: Session, child) -> tuple[str, str]:
    """(locale, guardian name) from the child's first known guardian, else the child's locale."""
    guardian = session.scalar(
        select(Guardian)
        .join(GuardianChild, GuardianChild.guardian_id == Guardian.id)
        .where(GuardianChild.child_id == child.id)
        .order_by(GuardianChild.parental_authority.desc(), GuardianChild.id)
        .limit(1)
    )
    if guardian is not None:
        return (guardian.locale if guardian.locale in ("ja", "en") else "ja"), guardian.name
    return (child.locale if child.locale in ("ja", "en") else "ja"), ""


def issue_letters(
    session: Session,
    principal: Principal,
    school_class: SchoolClass,
    *,
    secret_key: str,
    days: int,
    request_id: str | None = None,
) -> list[Letter]:
    """New one-time codes for every child of the class whose family has no account.

    One printing of a class at a time (a row lock on the class): two leads
    printing at the same moment would otherwise each retire only the codes
    that existed before, and leave two valid letters per child.
    """
    session.execute(select(SchoolClass.id).where(SchoolClass.id == school_class.id).with_for_update())
    now = utcnow()
    children = children_without_account(session, school_class)
    if children:
        # Earlier letters' unused codes stop working: only the newest letter is valid.
        session.execute(
            update(EnrolmentCode)
            .where(
                EnrolmentCode.child_id.in_([c.id for c in children]),
                EnrolmentCode.used_at.is_(None),
                EnrolmentCode.expires_at > now,
            )
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )
    letters = []
    for child in children:
        code = auth.issue_enrolment_code(session, secret_key, child, days=days, now=now)
        locale, guardian_name = _letter_locale(session, child)
        letters.append(Letter(child.id, child.name, guardian_name, code, now + timedelta(days=days), locale))
    audit.record(
        session,
        principal,
        "people.letters_issued",
        detail={"class_id": school_class.id, "school_id": school_class.school_id, "letters": len(letters), "days": days},
        request_id=request_id,
    )
    # The letters name each child and guardian: one audited read per child.
    audit.record_child_reads(session, principal, [lt.child_id for lt in letters], "people.letters",
                             request_id=request_id)
    return letters


# -- the PDF --------------------------------------------------------------------


class _QR(Flowable):
    def __init__(self, value: str, size: float):
        super().__init__()
        self.value, self.size = value, size
        self.width = self.height = size

    def draw(self):
        draw_qr(self.canv, self.value, 0, 0, self.size)


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("body", fontName=GOTHIC, fontSize=11, leading=18, wordWrap="CJK")
    return {
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=9, leading=14),
        "title": ParagraphStyle("title", parent=base, fontSize=17, leading=26, textColor=BRAND, spaceAfter=4 * mm),
        "right": ParagraphStyle("right", parent=base, alignment=2),
        "code": ParagraphStyle("code", parent=base, fontName=DIGITS, fontSize=26, leading=34, alignment=TA_CENTER),
        "center": ParagraphStyle("center", parent=base, alignment=TA_CENTER),
    }


def render_letters(
    session: Session,
    school: School,
    school_class: SchoolClass,
    letters: list[Letter],
    *,
    register_url: str,
    locale: str = "ja",
) -> bytes:
    """The PDF: A4, one page per letter, each in its guardian's language."""
    with force_locale(locale):
        return _render_letters(session, school, school_class, letters, register_url)


def _render_letters(session, school, school_class, letters, register_url) -> bytes:
    register_fonts()
    muni = session.scalar(select(Municipality).limit(1))
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=A4, leftMargin=22 * mm, rightMargin=22 * mm, topMargin=20 * mm, bottomMargin=18 * mm,
        title=_("Enrolment letters"), creator="Mimamori",
    )
    story: list = []
    st = _styles()
    if not letters:
        story.append(Paragraph(escape(_("Every family of this class already has an account.")), st["body"]))
    for i, letter in enumerate(letters):
        if i:
            story.append(PageBreak())
        with force_locale(letter.locale):
            story.extend(_letter(st, muni, school, school_class, letter, register_url))
    doc.build(story)
    return buf.getvalue()


def _letter(st, muni, school, school_class, letter: Letter, register_url: str) -> list:
    ja = letter.locale == "ja"
    e = escape
    school_name = school.name if ja else (school.name_en or school.name)
    muni_name = (muni.name_ja if ja else muni.name_en) if muni else ""
    sender = " ".join(p for p in (muni_name, school_name) if p)
    cls = _("Grade %(g)d, class %(c)s", g=school_class.grade_in_school, c=school_class.name)
    addressee = _("To the guardian of %(child)s", child=letter.child_name)
    expires = local_date(letter.expires_at, "long")
    out: list = [
        Paragraph(e(sender), st["right"]),
        Spacer(1, 6 * mm),
        Paragraph(e(addressee), st["body"]),
        Paragraph(e(f"{school_name}  {cls}"), st["small"]),
        Spacer(1, 6 * mm),
        Paragraph(e(_("Your family's account for Mimamori")), st["title"]),
        Paragraph(
            e(_(
                "Mimamori is the school's portal for families: you can see and change your consent, "
                "answer questionnaires, read messages from the school and find local support. "
                "To register, use the one-time code below."
            )),
            st["body"],
        ),
        Spacer(1, 6 * mm),
    ]
    code_box = Table(
        [
            [Paragraph(e(_("Your enrolment code")), st["center"])],
            [Paragraph(e(letter.code), st["code"])],
            [Paragraph(e(_("Valid until %(date)s, once only.", date=expires)), st["center"])],
        ],
        colWidths=[120 * mm],
    )
    code_box.setStyle(TableStyle([
        ("BOX", (0, 0), (-1, -1), 1.5, BRAND),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
    ]))
    out += [code_box, Spacer(1, 7 * mm), Paragraph(e(_("How to register")), st["body"])]
    steps = [
        _("Open this address on a phone or computer, or scan the QR code: %(url)s", url=register_url),
        _("Enter the enrolment code, your name, your e-mail address and a password of your choice."),
        _("After registering, sign in at any time with your e-mail address and password."),
    ]
    out.append(ListFlowable(
        [ListItem(Paragraph(e(s), st["body"]), leftIndent=14) for s in steps],
        bulletType="1", bulletFontName=GOTHIC, leftIndent=14,
    ))
    out += [Spacer(1, 4 * mm), Table([[_QR(register_url, 30 * mm)]], colWidths=[126 * mm]), Spacer(1, 6 * mm)]
    notes = [
        _("If you already have an account (for a brother or sister), sign in and choose \"Add a child\" instead."),
        _("Keep this letter safe: the code links your account to your child. Do not share it."),
        _("If the code has expired or the letter is lost, please ask the school for a new one."),
    ]
    for n in notes:
        out.append(Paragraph(e("• " + n), st["small"]))
    return out
