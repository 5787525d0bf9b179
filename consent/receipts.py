"""Consent receipts (JSON shaped on ISO/IEC TS 27560 consent records, and PDF) and the disclosure PDF.

:func:`receipt_json` follows the sections of TS 27560:2023 (field names in
snake case, as in the DPVCG's 27560 profiles):

* receipt metadata (6.4.5): ``receipt_id``, ``receipt_time``, ``record_id``;
* record header (6.3.3): ``schema_version``, ``record_id``,
  ``pii_principal_id`` (a pseudonymous reference: no name, no number),
  ``record_time``;
* PII processing (6.3.4): ``processing_id``, ``purposes`` (id, title,
  description), ``lawful_basis``, ``consent_type`` (explicit),
  ``pii_controllers`` (name, jurisdiction, law), ``collection_method``
  (sources), ``processing_method``, ``retention_period``,
  ``recipient_third_parties``, ``jurisdiction``, ``withdrawal_method``,
  ``privacy_notice`` (id, version, language, title, SHA-256 of the text,
  public URL), ``language``, ``privacy_rights``;
* PII information (6.3.5): ``pii_information`` (``pii_type`` per item);
* party identification (6.3.6): the PII principal (the child), the
  consenting party (guardian acting for the child, or the child) and the
  controller, each with ``party_id`` / ``party_type``;
* event (6.3.7): ``event_time``, ``recorded_time``, ``event_type``,
  ``event_by``, ``event_state``, ``collection_channel`` (online / paper /
  stop-of-use request), ``form_reference``, ``validity_duration``;
  plus ``current_state`` (the latest decision of that party for that purpose).

Not carried: a signature or other proof over the record (records are proven
by the stored document hash and the hash-chained audit log), the
controller's contact point and DPO, processing and storage locations,
codes of conduct, impact assessments, and DPV-coded values (our codes are
plain strings).
"""

from __future__ import annotations

import hashlib
import hmac
import io
from xml.sax.saxutils import escape

from flask import current_app, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import service
from consent.models import Action, ConsentEvent, Party
from portal.i18n import TOKYO
from portal.orm import utcnow
from portal.people.models import Child, Municipality
from portal.people.pdf import GOTHIC, register_fonts

SCHEMA = "ISO/IEC TS 27560:2023 consent record (Mimamori profile 2)"
TS_27560_SECTIONS = ("record_header", "pii_processing", "pii_information", "party_identification", "event")


def _ref(kind: str, ident: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return f"urn:mimamori:{kind}:" + hmac.new(key, f"{kind}:{ident}".encode(), hashlib.sha256).hexdigest()[:24]


def subject_ref(child_id: int) -> str:
    """A stable pseudonymous reference for the child (no name, no number)."""
    return _ref("subject", child_id)


def _processing_method(code: str) -> list[str]:
    return ["collect", "link", "analyse", "use"] if code == "data_linkage" else ["collect", "use"]


def receipt_json(session: Session, ev: ConsentEvent) -> dict:
    purpose = ev.purpose
    doc = ev.document
    locale = doc.locale
    muni = session.scalar(select(Municipality).limit(1))
    controller = (muni.name_ja if locale == "ja" else (muni.name_en or muni.name_ja)) if muni else None
    state = service.latest_event(session, ev.child_id, purpose.id, ev.party)
    record_id = f"urn:mimamori:consent-event:{ev.id}"
    if ev.party == Party.guardian:
        consenting = {
            "party_id": _ref("guardian", ev.guardian_id) if ev.guardian_id else None,
            "party_type": "parent_or_guardian",
            "acting_for_pii_principal": True,
        }
    else:
        consenting = {"party_id": subject_ref(ev.child_id), "party_type": "pii_principal", "acting_for_pii_principal": False}
    return {
        "schema_version": SCHEMA,
        "receipt": {
            "receipt_id": f"urn:mimamori:consent-receipt:{ev.id}",
            "receipt_time": utcnow().isoformat(),
            "record_id": record_id,
        },
        "record_header": {
            "schema_version": SCHEMA,
            "record_id": record_id,
            "pii_principal_id": subject_ref(ev.child_id),
            "pii_principal_category": "child",
            "record_time": ev.recorded_at.isoformat(),
        },
        "pii_processing": {
            "processing_id": f"urn:mimamori:purpose:{purpose.code}",
            "purposes": [
                {"id": purpose.code, "title": purpose.text("title", locale), "description": purpose.text("summary", locale)}
            ],
            "lawful_basis": "consent",
            "consent_type": "explicit",
            "pii_controllers": [
                {"name": controller, "jurisdiction": "JP", "law": "個人情報の保護に関する法律 (APPI), chapter V"}
            ],
            "collection_method": purpose.text("sources", locale) or [],
            "processing_method": _processing_method(purpose.code),
            "retention_period": purpose.text("retention", locale),
            "recipient_third_parties": purpose.text("users", locale) or [],
            "jurisdiction": "JP",
            "withdrawal_method": "online on the same page in the same steps as granting, or a paper form at school",
            "privacy_notice": {
                "id": f"urn:mimamori:consent-document:{doc.id}",
                "version": ev.version,
                "language": locale,
                "title": doc.title,
                "sha256": doc.sha256,
                "url": url_for("consent.public_purposes", _external=True) + f"#{purpose.code}",
            },
            "language": locale,
            "privacy_rights": ["disclosure (開示)", "correction (訂正)", "stop of use (利用停止)", "withdrawal"],
        },
        "pii_information": [{"pii_type": item} for item in (purpose.text("data_items", locale) or [])],
        "party_identification": [
            {"party_id": subject_ref(ev.child_id), "party_type": "pii_principal"},
            consenting,
            {"party_name": controller, "party_type": "pii_controller"},
        ],
        "event": [
            {
                "event_time": ev.at.isoformat(),
                "recorded_time": ev.recorded_at.isoformat(),
                "event_type": "consent_given" if ev.action == Action.grant else "consent_withdrawn",
                "event_by": consenting["party_type"],
                "event_state": "given" if ev.action == Action.grant else "withdrawn",
                "collection_channel": ev.channel.value,
                "form_reference": ev.form_no,
                "validity_duration": "until withdrawn" if ev.action == Action.grant else None,
            }
        ],
        "current_state": "given" if state is not None and state.action == Action.grant else "withdrawn",
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
        [_("Purpose"), data["pii_processing"]["purposes"][0]["title"]],
        [_("Decision"), action_label(ev.action)],
        [_("Given by"), party_label(ev.party)],
        [_("When"), at + " (JST)"],
        [_("How"), channel_label(ev.channel) + (f" ({ev.form_no})" if ev.form_no else "")],
        [_("State now"), _("Consent given") if data["current_state"] == "given" else _("Consent withdrawn")],
        [_("Text version"), f"{ev.version} ({ev.locale})"],
        [_("Fingerprint of the text (SHA-256)"), ev.document.sha256],
        [_("Receipt number"), data["record_header"]["record_id"]],
    ]
    story = [
        _p(_("Consent receipt"), s["h1"]),
        _p(data["pii_processing"]["pii_controllers"][0]["name"] or "", s["body"]),
        Spacer(1, 4 * mm),
        _table(facts, s, widths=[55 * mm, 115 * mm]),
        _p(_("The text you agreed to"), s["h2"]),
        _p(ev.document.title, s["body"]),
        _p(ev.document.body if ev.party == Party.guardian else (ev.document.child_body or ev.document.body), s["body"]),
        Spacer(1, 4 * mm),
        _p(_("You can withdraw at any time on the consent page, in the same steps as granting."), s["small"]),
    ]
    return _build(story)


# Column names of the disclosure sections other domains register, in the reader's words.
COLUMN_LABELS = {
    "record": _l("Record"), "date": _l("Date"), "source": _l("Source"), "method": _l("Linked by"),
    "data": _l("Data"), "kept_until": _l("Kept until"), "raised_on": _l("Raised on"), "reasons": _l("Reasons"),
    "status": _l("State"), "resolved_on": _l("Resolved on"), "outcome": _l("Outcome"), "case": _l("Case"),
    "opened": _l("Opened"), "decided": _l("Decided"), "closed": _l("Closed"), "close_reason": _l("Reason for closing"),
    "instrument": _l("Questionnaire"), "version": _l("Version"), "submitted_at": _l("Answered at"),
    "answers": _l("Answers"), "free_text": _l("Free text"), "score": _l("Score"),
    "below_threshold": _l("Below the threshold"), "reason": _l("Reason"), "acknowledged_at": _l("Acknowledged at"),
    "kind": _l("Kind"), "value": _l("Value"), "observed_at": _l("Observed at"), "received_at": _l("Received"),
    "due_on": _l("Answer by"), "notes": _l("Notes"),
}


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, dict):
        return "\n".join(f"{k}: {_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "\n".join(_cell(v) for v in value)
    return str(value)


def _rows_tables(rows: list[dict], s) -> list:
    """Rows as tables, one per shape (a section may mix kinds of record), headed in words."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.keys()), []).append(r)
    out = []
    for keys, group in groups.items():
        head = [str(COLUMN_LABELS.get(k, k.replace("_", " "))) for k in keys]
        out.append(_table([head] + [[_cell(r.get(k)) for k in keys] for r in group], s))
        out.append(Spacer(1, 2 * mm))
    return out


def disclosure_pdf(data: dict) -> bytes:
    """The readable disclosure (開示): the same content as the JSON download."""
    from portal.people.labels import role_label

    s = _styles()
    c = data["child"]
    story = [
        _p(_("Disclosure of personal information held"), s["h1"]),
        _p(_("Generated at %(at)s", at=data["generated_at"][:19].replace("T", " ") + " UTC"), s["small"]),
        _p(data["withheld_notice"], s["small"]),
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
        how = channel_label(r["channel"]) + (f" ({r['form_no']})" if r.get("form_no") else "")
        rows.append([r["at"][:10], r["purpose"], party_label(r["party"]), action_label(r["action"]), how, str(r["version"])])
    story.append(_table(rows, s) if len(rows) > 1 else _p(_("None."), s["body"]))
    story.append(_p(_("Requests about the data"), s["h2"]))
    if data.get("requests"):
        story.extend(_rows_tables(data["requests"], s))
    else:
        story.append(_p(_("None."), s["body"]))
    for section in data["sections"]:
        story.append(_p(section["title"], s["h2"]))
        if not section["rows"]:
            story.append(_p(_("None."), s["body"]))
            continue
        story.extend(_rows_tables(section["rows"], s))
    story.append(_p(_("Who looked at the record (by role, never by name)"), s["h2"]))
    rows = [[_("Date"), _("Role"), _("Times")]]
    for r in data["access_log"]:
        rows.append([r["date"], role_label(r["role"]), str(r["count"])])
    story.append(_table(rows, s) if len(rows) > 1 else _p(_("Nobody has looked at the record."), s["body"]))
    return _build(story)
