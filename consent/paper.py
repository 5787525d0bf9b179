"""Paper consent forms: one form entered by staff, or a file of them (``consent-paper``).

The file format is the import contract in ``../shared/admin-data-formats.md``;
the file is read by :mod:`portal.tabular`. Each row is recorded in its own
savepoint, so a refused row leaves nothing behind, and re-importing the same
file changes nothing (a paper event with the same child, purpose, party,
action, date and form number is recognised as already recorded).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import service
from consent.models import Action, Channel, ConsentEvent, Party
from portal.auth.principal import Principal
from portal.i18n import TOKYO
from portal.people.models import Child
from portal.tabular import Column, read_table, render_message

COLUMNS = [
    Column("student_no", "児童生徒番号", required=True),
    Column("party", "同意者区分", required=True),
    Column("signer", "同意者氏名"),
    Column("purpose", "目的コード", required=True),
    Column("action", "同意区分", required=True),
    Column("date", "日付", required=True),
    Column("form_no", "書面番号"),
]

PARTIES = {"保護者": Party.guardian, "guardian": Party.guardian, "本人": Party.child, "child": Party.child}
ACTIONS = {"同意": Action.grant, "grant": Action.grant, "撤回": Action.withdraw, "withdraw": Action.withdraw}

# Japanese eras: (names, first day). Year 1 of an era is its first year.
ERAS = [
    (("令和", "R"), date(2019, 5, 1)),
    (("平成", "H"), date(1989, 1, 8)),
    (("昭和", "S"), date(1926, 12, 25)),
]
_ERA_RE = re.compile(r"^(令和|平成|昭和|[RHS])\s*(元|\d{1,2})\s*[年.\-/]\s*(\d{1,2})\s*[月.\-/]\s*(\d{1,2})\s*日?$", re.I)
_WEST_RE = re.compile(r"^(\d{4})[-/年.](\d{1,2})[-/月.](\d{1,2})日?$")


class PaperError(service.ConsentError):
    code = "paper"


def parse_date(text: str) -> date | None:
    """ISO, slashed, compact (20250401) or Japanese-era dates; None when not a date."""
    t = unicodedata.normalize("NFKC", text or "").strip().replace(" ", "")
    try:
        if re.fullmatch(r"\d{8}", t):
            return date(int(t[:4]), int(t[4:6]), int(t[6:]))
        m = _WEST_RE.match(t)
        if m:
            return date(int(m[1]), int(m[2]), int(m[3]))
        m = _ERA_RE.match(t)
        if m:
            era = m[1].upper() if len(m[1]) == 1 else m[1]
            start = next(s for names, s in ERAS if era in names)
            year = 1 if m[2] == "元" else int(m[2])
            return date(start.year + year - 1, int(m[3]), int(m[4]))
    except ValueError:
        return None
    return None


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip()


def record_paper(
    session: Session,
    actor: Principal,
    *,
    student_no: str,
    party: str,
    purpose_code: str,
    action: str,
    signed_on: date | str,
    form_no: str | None = None,
    signer: str | None = None,
) -> tuple[ConsentEvent | None, bool]:
    """Record one paper form. Returns (event, created); (existing, False) when already recorded."""
    child = session.scalar(select(Child).where(Child.student_no == _norm(student_no)))
    if child is None:
        raise PaperError(_l("No child has the student number %(no)s.", no=_norm(student_no)))
    purpose = service.purpose_by_code(session, _norm(purpose_code))
    if purpose is None or not purpose.active:
        raise PaperError(_l("Unknown consent purpose %(code)s.", code=_norm(purpose_code)))
    party_v = PARTIES.get(_norm(party).lower()) or PARTIES.get(_norm(party))
    if party_v is None:
        raise PaperError(_l("The signer must be 保護者 (guardian) or 本人 (the child)."))
    action_v = ACTIONS.get(_norm(action).lower()) or ACTIONS.get(_norm(action))
    if action_v is None:
        raise PaperError(_l("The action must be 同意 (grant) or 撤回 (withdraw)."))
    if isinstance(signed_on, str):
        parsed = parse_date(signed_on)
        if parsed is None:
            raise PaperError(_l("The date %(d)s is not a date.", d=_norm(signed_on)))
        signed_on = parsed
    if signed_on > datetime.now(TOKYO).date():
        raise PaperError(_l("The date on the form is in the future."))
    at = service.paper_date(signed_on)
    form_no = _norm(form_no or "") or None
    existing = session.scalar(
        select(ConsentEvent).where(
            ConsentEvent.child_id == child.id,
            ConsentEvent.purpose_id == purpose.id,
            ConsentEvent.party == party_v,
            ConsentEvent.action == action_v,
            ConsentEvent.channel == Channel.paper,
            ConsentEvent.at >= at,
            ConsentEvent.at < service.paper_date(signed_on + timedelta(days=1)),
            ConsentEvent.form_no.is_(None) if form_no is None else ConsentEvent.form_no == form_no,
        )
    )
    if existing is not None:
        return existing, False
    ev = service.record_event(
        session,
        actor,
        child.id,
        purpose,
        party_v,
        action_v,
        locale="ja",
        channel=Channel.paper,
        at=at,
        form_no=form_no,
        signer=_norm(signer or "") or None,
    )
    return ev, True


@dataclass
class ImportReport:
    read: int = 0
    recorded: int = 0
    already: int = 0
    refused: list[tuple[int, str | None, str]] = field(default_factory=list)  # (line, column, message)
    unknown_columns: list[str] = field(default_factory=list)


def import_paper(session: Session, actor: Principal, source, *, filename: str | None = None) -> ImportReport:
    """Import a ``consent-paper`` file. Raises :class:`portal.tabular.TabularError` for a refused file."""
    table = read_table(source, COLUMNS, filename=filename)
    report = ImportReport(unknown_columns=list(table.unknown_columns))
    for row in table:
        report.read += 1
        if row.issues:
            issue = row.issues[0]
            report.refused.append((row.line, issue.column, render_message(issue.message)))
            continue
        nested = session.begin_nested()
        try:
            _ev, created = record_paper(
                session,
                actor,
                student_no=row["student_no"],
                party=row["party"],
                purpose_code=row["purpose"],
                action=row["action"],
                signed_on=row["date"],
                form_no=row.get("form_no"),
                signer=row.get("signer"),
            )
        except service.AlreadyRecorded:
            nested.rollback()
            report.already += 1
            continue
        except service.ConsentError as exc:
            nested.rollback()
            report.refused.append((row.line, None, render_message(exc.message)))
            continue
        nested.commit()
        if created:
            report.recorded += 1
        else:
            report.already += 1
    return report
