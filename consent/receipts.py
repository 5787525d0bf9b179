"""Consent receipts (JSON with ISO/IEC TS 27560 record fields, and PDF) and the disclosure PDF.

TS 27560 fields carried by :func:`receipt_json`: record identifier, schema
version, data subject (pseudonymous reference, category "child"), consenting
party and delegation (guardian for a child), data controller and
jurisdiction, purpose (id, title, description), personal-data categories,
data sources, recipients, processing operations, legal basis, storage
duration, notice (id, version, language, SHA-256 of the text), event (type
given/withdrawn, time, recorded time, method online/paper/request, paper
form reference), consent type (explicit), withdrawal method, and current
status. Not carried yet: a signature or other proof over the record itself,
the controller's contact point and DPO, processing location/transfers,
automated decision-making statements, and the full DPV-coded vocabulary
(our codes are plain strings).
"""

from __future__ import annotations

import hashlib
import hmac
import io
from xml.sax.saxutils import escape

from flask import current_app
from flask_babel import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import service
from consent.models import Action, ConsentEvent, Party
from portal.i18n import TOKYO
from portal.people.models import Child, Municipality
from portal.people.pdf import GOTHIC, register_fonts

SCHEMA = "ISO/IEC TS 27560:2023 consent record (Mimamori profile 1)"


def subject_ref(child_id: int) -> str:
    """A stable pseudonymous reference for the child (no name, no number)."""
    key = current_app.config["SECRET_KEY"].encode()
    return "urn:mimamori:subject:" + hmac.new(key, f"child:{child_id}".encode(), hashlib.sha256).hexdigest()[:24]


def receipt_json(session: Session, ev: ConsentEvent) -> dict:
    purpose = ev.purpose
    doc = ev.document
    locale = doc.locale
    muni = session.scalar(select(Municipality).limit(1))
    state = service.latest_event(session, ev.child_id, purpose.id, ev.party)
    return {
        "schema_version": SCHEMA,
        "record_id": f"urn:mimamori:consent-event:{ev.id}",
        "data_subject": {"id": subject_ref(ev.child_id), "category": "child"},
        "consenting_party": {
            "role": "parent_or_guardian" if ev.party == Party.guardian else "data_subject",
            "delegation": ev.party == Party.guardian,
        },
        "data_controller": {
            "name": (muni.name_ja if locale == "ja" else muni.name_en) if muni else None,
            "jurisdiction": "JP",
            "law": "個人情報の保護に関する法律 (APPI), chapter V",
        },
        "purpose": {
            "id": purpose.code,
            "title": purpose.text("title", locale),
            "description": purpose.text("summary", locale),
        },
        "personal_data_categories": purpose.text("data_items", locale) or [],
        "data_sources": purpose.text("sources", locale) or [],
        "recipients": purpose.text("users", locale) or [],
        "processing": ["collect", "link", "analyse", "use"] if purpose.code == "data_linkage" else ["collect", "use"],
        "legal_basis": "consent",
        "storage_duration": purpose.text("retention", locale),
        "notice": {
            "id": f"urn:mimamori:consent-document:{doc.id}",
            "version": ev.version,
            "language": locale,
            "title": doc.title,
            "sha256": doc.sha256,
        },
        "event": {
            "type": "given" if ev.action == Action.grant else "withdrawn",
            "time": ev.at.isoformat(),
            "recorded_time": ev.recorded_at.isoformat(),
            "method": ev.channel.value,
            "form_reference": ev.form_no,
        },
        "consent_type": "explicit",
        "withdrawal": {"method": "online, the same page and the same steps as granting; or on paper at school"},
        "current_status": (
            "given" if state is not None and state.action == Action.grant else "withdrawn"
        ),
    }


def _styles():
    register_fonts()
    body = ParagraphStyle("body", fontName=GOTHIC, fontSize=10, leading=15, wordWrap="CJK")
    return {
        "h1": ParagraphStyle("h1", parent=body, fontSize=16, leading=22, spaceAfter=6),
        "h2": ParagraphStyle("h2", parent=body, fontSize=12, leading=18, spaceBefore=8, spaceAfter=4),
        "body": body,
        "small": ParagraphStyle("small", parent=body, fontSize=8, leading=11),
    }


def _p(text, style) -> Paragraph:
    return Paragraph(escape(str(text or "")).replace("\n", "<br/>"), style)


def _table(rows: list[list], styles, widths=None) -> Table:
    data = [[_p(c, styles["small"]) for c in r] for r in rows]
    t = Table(data, colWidths=widths, repeatRows=1)
    t.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, "#888888"),
                ("BACKGROUND", (0, 0), (-1, 0), "#e8eeec"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return t


def _build(story) -> bytes:
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm, bottomMargin=18 * mm,
                            title="Mimamori", author="Mimamori")
    doc.build(story)
    return buf.getvalue()


def party_label(party) -> str:
    return _("Guardian") if party == Party.guardian else _("Child")


def action_label(action) -> str:
    return _("Consent given") if action == Action.grant else _("Consent withdrawn")


def channel_label(channel) -> str:
    return {"online": _("Online"), "paper": _("Paper form"), "data_request": _("Stop-of-use request")}[str(channel)]


def receipt_pdf(session: Session, ev: ConsentEvent) -> bytes:
    s = _styles()
    data = receipt_json(session, ev)
    child = session.get(Child, ev.child_id)
    at = ev.at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M")
    facts = [
        [_("Item"), _("Value")],
        [_("Child"), child.name],
        [_("Purpose"), data["purpose"]["title"]],
        [_("Decision"), action_label(ev.action)],
        [_("Given by"), party_label(ev.party)],
        [_("When"), at + " (JST)"],
        [_("How"), channel_label(ev.channel) + (f" ({ev.form_no})" if ev.form_no else "")],
        [_("Text version"), f"{ev.version} ({ev.locale})"],
        [_("Fingerprint of the text (SHA-256)"), ev.document.sha256],
        [_("Receipt number"), data["record_id"]],
    ]
    story = [
        _p(_("Consent receipt"), s["h1"]),
        _p(data["data_controller"]["name"] or "", s["body"]),
        Spacer(1, 4 * mm),
        _table(facts, s, widths=[55 * mm, 115 * mm]),
        _p(_("The text you agreed to"), s["h2"]),
        _p(ev.document.title, s["body"]),
        _p(ev.document.body if ev.party == Party.guardian else (ev.document.child_body or ev.document.body), s["body"]),
        Spacer(1, 4 * mm),
        _p(_("You can withdraw at any time on the consent page, in the same steps as granting."), s["small"]),
    ]
    return _build(story)


def disclosure_pdf(data: dict) -> bytes:
    s = _styles()
    c = data["child"]
    story = [
        _p(_("Disclosure of personal information held"), s["h1"]),
        _p(_("Generated at %(at)s", at=data["generated_at"][:19].replace("T", " ") + " UTC"), s["small"]),
        _p(_("The child"), s["h2"]),
        _table(
            [[_("Item"), _("Value")], [_("Name"), c["name"]], [_("Name (kana)"), c["name_kana"]],
             [_("Date of birth"), c["birth_date"]], [_("Student number"), c["student_no"]],
             [_("School"), c["school"] or ""], [_("Grade"), c["grade"] or ""], [_("Address"), c["address"]]],
            s, widths=[45 * mm, 125 * mm],
        ),
        _p(_("Consent history"), s["h2"]),
    ]
    rows = [[_("When"), _("Purpose"), _("Given by"), _("Decision"), _("How"), _("Version")]]
    for r in data["consent_history"]:
        rows.append([r["at"][:10], r["purpose"], party_label(r["party"]), action_label(r["action"]),
                     channel_label(r["channel"]), str(r["version"])])
    story.append(_table(rows, s) if len(rows) > 1 else _p(_("None."), s["body"]))
    for section in data["sections"]:
        story.append(_p(section["title"], s["h2"]))
        if not section["rows"]:
            story.append(_p(_("None."), s["body"]))
            continue
        keys = list(section["rows"][0].keys())
        story.append(_table([keys] + [[str(r.get(k, "")) for k in keys] for r in section["rows"]], s))
    story.append(_p(_("Who looked at the record (by role, never by name)"), s["h2"]))
    from portal.people.labels import role_label

    rows = [[_("Date"), _("Role"), _("Times")]]
    for r in data["access_log"]:
        rows.append([r["date"], role_label(r["role"]), str(r["count"])])
    story.append(_table(rows, s) if len(rows) > 1 else _p(_("Nobody has looked at the record."), s["body"]))
    return _build(story)
