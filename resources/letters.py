"""Printable letters for families without e-mail: one PDF per class, one page per family.

Each page is in the family's language and goes home with the family's
youngest child in the audience, handed out by the class teacher. Text uses
reportlab's built-in CID fonts (no font files), so Japanese prints anywhere.
"""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import escape

from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.audit import service as audit
from portal.auth.principal import Principal
from portal.orm import utcnow
from portal.people.models import Child, Guardian, School, SchoolClass
from resources.campaigns import campaign_services, public_url
from resources.models import Campaign, CampaignStatus, Channel, Delivery, DeliveryStatus
from resources.service import ages_text, schedule_text

GOTHIC = "HeiseiKakuGo-W5"
MINCHO = "HeiseiMin-W3"
_fonts_ready = False


def _fonts() -> None:
    global _fonts_ready
    if not _fonts_ready:
        pdfmetrics.registerFont(UnicodeCIDFont(GOTHIC))
        pdfmetrics.registerFont(UnicodeCIDFont(MINCHO))
        _fonts_ready = True


def _styles(locale: str) -> dict[str, ParagraphStyle]:
    wrap = "CJK" if locale == "ja" else None
    base = {"fontName": MINCHO, "fontSize": 10.5, "leading": 16, "wordWrap": wrap}
    return {
        "to": ParagraphStyle("to", **{**base, "fontName": GOTHIC, "fontSize": 10}),
        "title": ParagraphStyle("title", **{**base, "fontName": GOTHIC, "fontSize": 16, "leading": 22, "spaceBefore": 6, "spaceAfter": 8}),
        "body": ParagraphStyle("body", **{**base, "spaceAfter": 6}),
        "h": ParagraphStyle("h", **{**base, "fontName": GOTHIC, "fontSize": 12, "leading": 17, "spaceBefore": 8}),
        "small": ParagraphStyle("small", **{**base, "fontSize": 9, "leading": 13}),
    }


def _p(text: str, style) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def letters_by_class(session: Session, campaign_id: int, school_ids) -> list[tuple[SchoolClass, School, int, int]]:
    """(class, school, letters, printed) for the classes of these schools (no names)."""
    rows = session.execute(
        select(SchoolClass, School, func.count(Delivery.id),
               func.count(Delivery.sent_at))
        .join(Delivery, Delivery.class_id == SchoolClass.id)
        .join(School, School.id == SchoolClass.school_id)
        .where(Delivery.campaign_id == campaign_id, Delivery.channel == Channel.letter,
               SchoolClass.school_id.in_(school_ids))
        .group_by(SchoolClass.id, School.id)
        .order_by(School.code, SchoolClass.grade, SchoolClass.name)
    ).all()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def letters_for_classes(session: Session, class_ids) -> list[tuple[Campaign, list[tuple[SchoolClass, School, int, int]]]]:
    """Sent campaigns with letters for these classes, newest first: (campaign, [(class, school, letters, printed)]).

    One query whatever the number of campaigns and classes.
    """
    rows = session.execute(
        select(Campaign, SchoolClass, School, func.count(Delivery.id), func.count(Delivery.sent_at))
        .join(Delivery, Delivery.campaign_id == Campaign.id)
        .join(SchoolClass, SchoolClass.id == Delivery.class_id)
        .join(School, School.id == SchoolClass.school_id)
        .where(Delivery.channel == Channel.letter, Delivery.class_id.in_(class_ids),
               Campaign.status == CampaignStatus.sent)
        .group_by(Campaign.id, SchoolClass.id, School.id)
        .order_by(Campaign.sent_at.desc(), Campaign.id.desc(), School.code, SchoolClass.grade, SchoolClass.name)
    ).all()
    out: list[tuple[Campaign, list]] = []
    for campaign, cls, school, n, printed in rows:
        if not out or out[-1][0].id != campaign.id:
            out.append((campaign, []))
        out[-1][1].append((cls, school, n, printed))
    return out


def _page(story: list, campaign: Campaign, services, guardian_name: str | None, child_name: str, cls: SchoolClass,
          school: School, locale: str) -> None:
    st = _styles(locale)
    school_name = school.name if locale == "ja" else (school.name_en or school.name)
    story.append(_p(school_name + "  " + _("Grade %(g)d, class %(c)s", g=cls.grade_in_school, c=cls.name), st["to"]))
    if guardian_name:
        story.append(_p(_("To the family of %(child)s (%(guardian)s)", child=child_name, guardian=guardian_name), st["to"]))
    else:  # no guardian on record: the letter goes home with the child
        story.append(_p(_("To the family of %(child)s", child=child_name), st["to"]))
    story.append(_p(campaign.title(locale), st["title"]))
    for para in campaign.body(locale).split("\n\n"):
        if para.strip():
            story.append(_p(para.strip(), st["body"]))
    for s in services:
        story.append(_p(s.name(locale), st["h"]))
        desc = s.description(locale)
        if desc:
            story.append(_p(desc if len(desc) <= 280 else desc[:279] + "…", st["body"]))
        lines = [_("For: %(ages)s", ages=ages_text(s.min_age_months, s.max_age_months))]
        lines += [schedule_text(sc) for sc in s.schedules]
        if s.address:
            lines.append(_("Address: %(a)s", a=s.address))
        if s.phone:
            lines.append(_("Phone: %(p)s", p=s.phone))
        lines.append(_("Cost: %(c)s", c=_("Free") if s.is_free else (s.fees(locale) or _("There is a fee"))))
        lines.append(public_url(f"/resources/{s.id}"))
        story.append(_p("\n".join(lines), st["small"]))
    story.append(Spacer(1, 6 * mm))
    story.append(_p(_("Every family in the area receives this letter. You can also read it online after signing in."), st["small"]))
    story.append(PageBreak())


def render_class_pdf(session: Session, actor: Principal, campaign: Campaign, class_id: int) -> bytes:
    """One page per family with a letter in this class, each in the family's language."""
    _fonts()
    cls = session.get(SchoolClass, class_id)
    school = session.get(School, cls.school_id)
    services = campaign_services(session, campaign)
    rows = session.execute(
        select(Delivery.child_id, Delivery.locale, Guardian.name, Child.name)
        .outerjoin(Guardian, Guardian.id == Delivery.guardian_id)
        .outerjoin(Child, Child.id == Delivery.child_id)
        .where(Delivery.campaign_id == campaign.id, Delivery.channel == Channel.letter, Delivery.class_id == class_id)
        .order_by(Child.name_kana, Delivery.id)
    ).all()
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                            bottomMargin=18 * mm, title=campaign.title_ja, author="Mimamori")
    story: list = []
    for _child_id, locale, guardian_name, child_name in rows:
        with force_locale(locale):
            _page(story, campaign, services, guardian_name, child_name or "", cls, school, locale)
    if story:
        story.pop()  # no blank page at the end
    doc.build(story)
    session.execute(
        update(Delivery).where(Delivery.campaign_id == campaign.id, Delivery.channel == Channel.letter,
                               Delivery.class_id == class_id, Delivery.sent_at.is_(None))
        .values(status=DeliveryStatus.sent, sent_at=utcnow()).execution_options(synchronize_session=False)
    )
    session.flush()
    # The letters name each child and guardian: one audited read per child.
    audit.record_child_reads(session, actor, [r[0] for r in rows if r[0] is not None], "resources.letters")
    audit.record(session, actor, "resources.letters_printed",
                 detail={"campaign_id": campaign.id, "class_id": class_id, "count": len(rows)})
    return buf.getvalue()


def render_school_zip(session: Session, actor: Principal, campaign: Campaign, school_id: int) -> bytes:
    """Every class's letters for one school, a PDF per class in one zip."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for cls, school, _n, _printed in letters_by_class(session, campaign.id, [school_id]):
            pdf = render_class_pdf(session, actor, campaign, cls.id)
            zf.writestr(f"letters-{campaign.id}-{school.code}-{cls.grade}-{cls.name}.pdf", pdf)
    return out.getvalue()
