"""Importing administrative files: the roster (children master) and the linked sources.

Every function takes a Session and explicit arguments and flushes; the
caller (command, page, test) commits once, so an import is one transaction:
a file refused as a whole, or an error half-way, leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from dateutil.relativedelta import relativedelta
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from backoffice.linkage import matching
from backoffice.linkage import normalize as n
from backoffice.linkage.catalogue import SourceSpec, load
from backoffice.linkage.models import (
    ImportBatch,
    LinkDecision,
    LinkedRecord,
    ReviewCandidate,
    ReviewItem,
)
from portal import once
from portal.audit.service import record as audit
from portal.auth.principal import Principal
from portal.orm import utcnow
from portal.people.models import Child, Enrolment, School, SchoolClass, SchoolKind, SchoolYear
from portal.tabular import DEFAULT_MAX_BYTES, Table, TabularError, read_table

log = logging.getLogger(__name__)

PURPOSE = "data_linkage"
MAX_ROW_ERRORS = 200
PROGRESS_EVERY = 2000

#: ``progress(phase, done, total)``: phase is reading | linking | saving;
#: ``total`` is None while the number of rows is not yet known.
Progress = Callable[[str, int, "int | None"], None]
INSERT_CHUNK = 5000

#: Row problems, by code (messages shown in the report, in the reader's language).
ROW_ERRORS = {
    "required": _l("a required value is empty"),
    "date": _l("not a possible date"),
    "month": _l("not a possible year and month"),
    "int": _l("not a whole number"),
    "number": _l("not a number"),
    "value": _l("not one of the accepted values"),
    "sex": _l("not a sex code (男/女, M/F, 1/2)"),
    "formula": _l("a spreadsheet formula is not accepted"),
    "extra_fields": _l("more fields than the header"),
    "grade": _l("not a grade from 1 to 9"),
    "school": _l("the school code does not match the school name of an earlier row"),
}

DROP_REASONS = {
    "not_consented": _l("no consent for data linkage"),
    "no_match": _l("no matching child"),
    "rejected": _l("rejected earlier by the data steward"),
    "invalid": _l("invalid row"),
}


#: How a record was linked (the export's ``method``), for the pages.
METHODS = {
    "student_no": _l("by student number (児童生徒番号)"),
    "atena_no": _l("by resident number (宛名番号)"),
    "probabilistic": _l("by name, birth date, sex and address"),
    "clerical": _l("by the data steward's decision"),
}

#: What a roster import did, for the report page.
ROSTER_COUNTS = {
    "children_created": _l("Children added"),
    "children_updated": _l("Children updated"),
    "children_unchanged": _l("Children unchanged"),
    "schools_created": _l("Schools added"),
    "classes_created": _l("Classes added"),
    "enrolments_created": _l("Enrolments added"),
    "enrolments_updated": _l("Enrolments changed"),
    "duplicates": _l("Rows repeating a student number (skipped)"),
    "invalid": _l("Invalid rows (skipped)"),
}


class AlreadyRolledBack(TabularError):
    def __init__(self):
        super().__init__("rolled_back", _l("This batch was already rolled back (by someone else a moment ago). "
                                           "Nothing more was removed."))


class UnknownSource(TabularError):
    def __init__(self, source: str):
        super().__init__("source", _l("“%(source)s” is not a source of the data item catalogue.", source=source))


@dataclass
class RowError:
    line: int
    column: str | None
    code: str

    def as_dict(self) -> dict:
        return {"line": self.line, "column": self.column, "code": self.code}


@dataclass
class Report:
    """What an import did; stored on the batch (ids and counts only)."""

    source: str
    batch_id: int | None = None
    already_imported: int | None = None
    rows_read: int = 0
    linked: Counter = field(default_factory=Counter)
    review: int = 0
    dropped: Counter = field(default_factory=Counter)
    unchanged: int = 0
    stale_numbers: int = 0
    errors: list[RowError] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)
    encoding: str | None = None
    file_format: str = "csv"
    parameters: dict = field(default_factory=dict)
    roster: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            "rows_read": self.rows_read, "linked": dict(self.linked), "review": self.review,
            "dropped": dict(self.dropped), "unchanged": self.unchanged, "stale_numbers": self.stale_numbers,
            "errors": [e.as_dict() for e in self.errors[:MAX_ROW_ERRORS]], "error_count": len(self.errors),
            "unknown_columns": self.unknown_columns, "encoding": self.encoding, "format": self.file_format,
            "m_from": self.parameters.get("m_from"), "roster": dict(self.roster),
        }

    @classmethod
    def from_batch(cls, batch: ImportBatch) -> Report:
        c = batch.counts or {}
        r = cls(source=batch.source, batch_id=batch.id, rows_read=c.get("rows_read", 0),
                linked=Counter(c.get("linked", {})), review=c.get("review", 0),
                dropped=Counter(c.get("dropped", {})), unchanged=c.get("unchanged", 0),
                stale_numbers=c.get("stale_numbers", 0),
                errors=[RowError(**e) for e in c.get("errors", [])], unknown_columns=c.get("unknown_columns", []),
                encoding=c.get("encoding"), file_format=c.get("format", "csv"), roster=Counter(c.get("roster", {})))
        r.parameters = {"m_from": c.get("m_from")}
        return r

    def lines(self) -> list[str]:
        """The report as plain lines (the command prints these)."""
        out = []
        if self.already_imported:
            out.append(f"already imported as batch {self.already_imported}: nothing changed")
        out.append(f"source: {self.source}  batch: {self.batch_id or '-'}  format: {self.file_format}"
                   f"  encoding: {self.encoding or '-'}")
        out.append(f"rows read: {self.rows_read}")
        if self.roster:
            out.append("roster: " + ", ".join(f"{k} {v}" for k, v in sorted(self.roster.items())))
        else:
            out.append("linked: " + (", ".join(f"{k} {v}" for k, v in sorted(self.linked.items())) or "0")
                       + f" (total {sum(self.linked.values())})")
            out.append(f"sent to review: {self.review}")
            out.append("dropped: " + (", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items())) or "0"))
            if self.unchanged:
                out.append(f"unchanged (already stored): {self.unchanged}")
            if self.stale_numbers:
                out.append(f"numbers not confirmed by name and birth date: {self.stale_numbers}")
        if self.unknown_columns:
            out.append("unknown columns ignored: " + ", ".join(self.unknown_columns))
        for e in self.errors[:MAX_ROW_ERRORS]:
            out.append(f"invalid row: line {e.line}" + (f", column {e.column}" if e.column else "")
                       + f": {ROW_ERRORS.get(e.code, e.code)}")
        if len(self.errors) > MAX_ROW_ERRORS:
            out.append(f"... and {len(self.errors) - MAX_ROW_ERRORS} more invalid rows")
        return out


# -- reading and validating -------------------------------------------------------


def stream_size(stream) -> int | None:
    """The size of a seekable upload stream without reading it (None when
    the stream cannot tell)."""
    try:
        here = stream.tell()
        size = stream.seek(0, 2)
        stream.seek(here)
    except (AttributeError, OSError, ValueError):
        return None
    return size


def refuse_if_too_large(size: int | None, max_bytes: int) -> None:
    """Refuse a file by its size alone, before reading it (raises TabularError)."""
    if size is not None and size > max_bytes:
        raise TabularError(
            "too_large",
            _l("The file is larger than %(size)s MB and was not read.", size=max(1, max_bytes // (1024 * 1024))),
        )


def source_spec(source: str) -> SourceSpec:
    spec = load().source(source)
    if spec is None:
        raise UnknownSource(source)
    return spec


def open_file(source: str, data, filename: str | None = None, *,
              max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[SourceSpec, Table]:
    """Read a file against a source's columns (raises TabularError)."""
    spec = source_spec(source)
    return spec, read_table(data, spec.tabular_columns(), filename=filename, max_bytes=max_bytes)


@dataclass
class ParsedRow:
    number: int
    line: int
    raw: dict[str, str]
    values: dict[str, object]
    errors: list[RowError]


def parse_row(spec: SourceSpec, row) -> ParsedRow:
    """Typed values of one row (dates as date, numbers as int/float), with
    each problem named by line and column."""
    errors: list[RowError] = []
    for issue in row.issues:
        errors.append(RowError(issue.line, issue.column, issue.code))
    values: dict[str, object] = {}
    for col in spec.columns:
        raw = row.values.get(col.key, "")
        if not raw:
            if col.required:
                errors.append(RowError(row.line, col.header, "required"))
            values[col.key] = None
            continue
        v, bad = _convert(col.type, raw)
        if bad:
            errors.append(RowError(row.line, col.header, bad))
        elif col.values and v not in col.values:
            errors.append(RowError(row.line, col.header, "value"))
        values[col.key] = v
    return ParsedRow(row.number, row.line, dict(row.values), values, errors)


@lru_cache(maxsize=200_000)
def _convert(kind: str, raw: str) -> tuple[object, str | None]:
    """One cell's typed value and its problem code (None when fine).

    Cached: administrative files repeat the same dates, codes and numbers
    on many rows (a child's name on twelve monthly attendance rows)."""
    if kind == "date":
        v = n.parse_date(raw)
        return v, None if v is not None else "date"
    if kind == "month":
        v = n.parse_month(raw)
        return v, None if v is not None else "month"
    if kind == "int":
        v = n.integer(raw)
        return v, None if v is not None and v >= 0 else "int"
    if kind == "number":
        v = n.decimal_number(raw)
        return v, None if v is not None else "number"
    if kind == "sex":
        v = n.sex_code(raw)
        return v, None if v is not None else "sex"
    if kind == "id":
        return n.id_number(raw), None
    return n.nfkc(raw), None


_nfkc = lru_cache(maxsize=200_000)(n.nfkc)


def row_key(source: str, raw: dict[str, str], spec: SourceSpec) -> str:
    """The identity of a row's content, whatever file it arrives in."""
    parts = [source] + [_nfkc(raw.get(c.key, "")) for c in spec.columns]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def preview(source: str, data, filename: str | None = None, limit: int = 10, *,
            max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
    """The first rows and what the reader found, without importing anything."""
    spec, table = open_file(source, data, filename, max_bytes=max_bytes)
    rows, errors, total = [], [], 0
    for row in table:
        total += 1
        parsed = parse_row(spec, row)
        errors.extend(parsed.errors)
        if len(rows) < limit:
            rows.append((row.line, [row.values.get(c.key, "") for c in spec.columns]))
    return {
        "spec": spec, "format": table.format, "encoding": table.encoding, "rows": rows, "total": total,
        "unknown_columns": table.unknown_columns, "errors": errors[:50], "error_count": len(errors),
        "missing_optional": [c.header for c in spec.columns if c.key not in table.columns],
        "sha256": table.sha256,
    }


def find_previous(session: Session, source: str, sha256: str) -> ImportBatch | None:
    return session.scalar(
        select(ImportBatch).where(ImportBatch.source == source, ImportBatch.file_sha256 == sha256,
                                  ImportBatch.status == "completed").limit(1)
    )


def _new_batch(session: Session, actor: Principal, source: str, table: Table, filename: str | None) -> ImportBatch:
    batch = ImportBatch(
        source=source, filename=(filename or "")[:255], file_sha256=table.sha256, file_format=table.format,
        encoding=table.encoding, actor_kind="staff" if actor.kind == "staff" else "system",
        actor_id=actor.id if actor.kind == "staff" else None,
    )
    session.add(batch)
    session.flush()
    return batch


# -- linked sources -------------------------------------------------------------


def consented_ids(session: Session) -> set[int]:
    from consent.gate import consented_child_ids

    return set(session.scalars(consented_child_ids(PURPOSE)))


def child_index(session: Session) -> matching.ChildIndex:
    year = current_year(session)
    placed = (
        select(Enrolment.child_id, School.code, SchoolClass.grade, SchoolClass.name.label("klass"))
        .join(SchoolClass, SchoolClass.id == Enrolment.class_id).join(School, School.id == SchoolClass.school_id)
        .where(Enrolment.school_year_id == (year.id if year else -1))
        .subquery()
    )
    rows = session.execute(
        select(Child.id, Child.name, Child.name_kana, Child.birth_date, Child.sex, Child.address,
               Child.student_no, Child.atena_no, placed.c.code, placed.c.grade, placed.c.klass)
        .outerjoin(placed, placed.c.child_id == Child.id)
    )
    children = {
        r.id: matching.person(name=r.name, kana=r.name_kana, birth_date=r.birth_date, sex=r.sex,
                              address=r.address, student_no=r.student_no, atena_no=r.atena_no,
                              school=r.code, grade=r.grade, klass=r.klass)
        for r in rows
    }
    return matching.ChildIndex(children, consented_ids(session))


def _expiry(spec: SourceSpec, record_date: date | None, today: date) -> date:
    return _add_months(record_date or today, spec.retention_months)


@lru_cache(maxsize=20_000)
def _add_months(start: date, months: int) -> date:
    return start + relativedelta(months=months)


def import_file(
    session: Session,
    actor: Principal,
    source: str,
    data,
    filename: str | None = None,
    *,
    progress: Progress | None = None,
    today: date | None = None,
) -> Report:
    """Import one administrative file (raises TabularError when the file as a
    whole is refused). The caller commits.

    Nothing is written before every row is read and matched (the batch, the
    records and the review items are inserted at the end), so ``progress``
    may record itself through another connection, even on SQLite."""
    spec = source_spec(source)
    if spec.master:
        return import_roster(session, actor, data, filename, progress=progress)
    table = read_table(data, spec.tabular_columns(), filename=filename)
    report = Report(source=source, unknown_columns=table.unknown_columns, encoding=table.encoding,
                    file_format=table.format)
    previous = find_previous(session, source, table.sha256)
    if previous is not None:
        old = Report.from_batch(previous)
        old.already_imported = previous.id
        return old
    today = today or utcnow().date()

    parsed: list[ParsedRow] = []
    people: list[matching.Person] = []
    persons: dict[tuple, matching.Person] = {}
    for row in table:
        report.rows_read += 1
        p = parse_row(spec, row)
        if p.errors:
            report.errors.extend(p.errors)
            report.dropped["invalid"] += 1
            continue
        parsed.append(p)
        v = p.values
        ident = (v.get("name") or "", v.get("name_kana") or "", v.get("birth_date"), v.get("sex"),
                 v.get("address") or "", v.get("student_no") or "", v.get("atena_no") or "",
                 v.get("school_code") or "", v.get("grade"), v.get("class_name") or "")
        rec = persons.get(ident)
        if rec is None:  # one person often has many rows (monthly files)
            rec = persons[ident] = matching.person(
                name=ident[0], kana=ident[1], birth_date=ident[2], sex=ident[3], address=ident[4],
                student_no=ident[5], atena_no=ident[6], school=ident[7], grade=ident[8], klass=ident[9])
        people.append(rec)
        if progress and report.rows_read % PROGRESS_EVERY == 0:
            progress("reading", report.rows_read, None)

    if progress:
        progress("linking", 0, len(parsed))
    index = child_index(session)
    params = matching.fit(list(persons.values()), index)  # each person once
    report.parameters = params.as_dict()
    matcher = matching.Matcher(index, params)

    stored = set(session.scalars(select(LinkedRecord.row_key).where(LinkedRecord.source == source)))
    decisions = {
        d.row_key: d for d in session.scalars(select(LinkDecision).where(LinkDecision.source == source))
    }
    kept = spec.kept
    plain = [c for c in kept if not c.encrypted]
    secret = [c for c in kept if c.encrypted]
    to_insert: list[dict] = []
    reviews: list[tuple[dict, matching.Outcome, ParsedRow]] = []
    seen: set[str] = set()
    outcomes: dict[int, matching.Outcome] = {}

    def payload(p: ParsedRow) -> dict:
        return {c.key: _json_value(p.values.get(c.key)) for c in plain if p.values.get(c.key) is not None}

    for i, (p, rec) in enumerate(zip(parsed, people, strict=True)):
        key = row_key(source, p.raw, spec)
        if key in stored or key in seen:
            report.unchanged += 1
            continue
        seen.add(key)
        rdate = p.values.get(spec.date_column) if spec.date_column else None
        base = {
            "source": source, "source_row": p.number, "row_key": key,
            "record_date": rdate, "expires_on": _expiry(spec, rdate, today), "data": payload(p),
            "secret": json.dumps({c.key: p.values.get(c.key) for c in secret}, ensure_ascii=False)
            if secret and any(p.values.get(c.key) for c in secret) else None,
            "created_at": utcnow(),
        }
        decision = decisions.get(key)
        if decision is not None:
            if decision.decision == "reject" or decision.child_id is None:
                report.dropped["rejected"] += 1
            elif decision.child_id in index.consented:
                to_insert.append({**base, "child_id": decision.child_id, "method": "clerical", "score": None,
                                  "status": "linked"})
                report.linked["clerical"] += 1
            else:
                report.dropped["not_consented"] += 1
            continue
        out = outcomes.get(id(rec))
        if out is None:
            out = outcomes[id(rec)] = matcher.match(rec)
        if out.stale_number:
            report.stale_numbers += 1
        if out.kind == "drop":
            report.dropped[out.reason] += 1
        elif out.kind == "link":
            to_insert.append({**base, "child_id": out.child_id, "method": out.method,
                              "score": round(out.probability or 0, 6), "status": "linked"})
            report.linked[out.method] += 1
        else:
            reviews.append(({**base, "child_id": out.child_id, "method": out.method,
                             "score": round(out.probability or 0, 6), "status": "review"}, out, p))
            report.review += 1
        if progress and i and i % PROGRESS_EVERY == 0:
            progress("linking", i, len(parsed))

    if progress:
        progress("saving", len(parsed), len(parsed))
    batch = _new_batch(session, actor, source, table, filename)
    report.batch_id = batch.id
    for values in to_insert:
        values["batch_id"] = batch.id
    for start in range(0, len(to_insert), INSERT_CHUNK):
        chunk = to_insert[start:start + INSERT_CHUNK]
        session.execute(LinkedRecord.__table__.insert(), chunk)
    for values, out, p in reviews:
        rec_obj = LinkedRecord(**values, batch_id=batch.id)
        session.add(rec_obj)
        session.flush()
        match_fields = {c.key: _json_value(p.values.get(c.key)) for c in spec.match_columns
                        if p.values.get(c.key) is not None}
        item = ReviewItem(record_id=rec_obj.id, source=source,
                          match_fields=json.dumps(match_fields, ensure_ascii=False))
        item.candidates = [ReviewCandidate(child_id=c.child_id, score=round(c.probability, 6),
                                           agreement=c.agreement()) for c in out.candidates]
        session.add(item)
    batch.counts = report.as_dict()
    session.flush()
    audit(session, actor, "linkage.import", detail={
        "batch": batch.id, "source": source, "rows": report.rows_read,
        "linked": sum(report.linked.values()), "review": report.review,
    })
    return report


def _json_value(v):
    if isinstance(v, date):
        return v.isoformat()
    return v


# -- the roster (children master) -------------------------------------------------


def current_year(session: Session) -> SchoolYear | None:
    return session.scalar(select(SchoolYear).where(SchoolYear.is_current.is_(True)))


class NoCurrentYear(TabularError):
    def __init__(self):
        super().__init__("no_year", _l("There is no current school year; create it before importing the roster."))


def import_roster(session: Session, actor: Principal, data, filename: str | None = None, *,
                  progress: Progress | None = None) -> Report:
    """Create or update schools, classes, children and enrolments for the
    current school year from a roster file. Rows with problems are skipped
    and reported; the caller commits."""
    spec = source_spec("roster")
    table = read_table(data, spec.tabular_columns(), filename=filename)
    report = Report(source="roster", unknown_columns=table.unknown_columns, encoding=table.encoding,
                    file_format=table.format)
    previous = find_previous(session, "roster", table.sha256)
    if previous is not None:
        old = Report.from_batch(previous)
        old.already_imported = previous.id
        return old
    year = current_year(session)
    if year is None:
        raise NoCurrentYear()
    schools = {s.code: s for s in session.scalars(select(School))}
    classes = {(c.school_id, c.grade, c.name): c for c in
               session.scalars(select(SchoolClass).where(SchoolClass.school_year_id == year.id))}
    # Set-based: one read of the children and enrolments, then bulk writes
    # (no query per row; 20,000 children in a few seconds).
    cols = ("name", "name_kana", "birth_date", "sex", "address", "atena_no")
    existing = {r.student_no: r for r in session.execute(
        select(Child.id, Child.student_no, *(getattr(Child, c) for c in cols)))}
    enrolments = {r.child_id: r for r in session.execute(
        select(Enrolment.id, Enrolment.child_id, Enrolment.class_id, Enrolment.attendance_no)
        .where(Enrolment.school_year_id == year.id))}
    new_children: list[dict] = []
    child_updates: list[dict] = []
    placements: dict[str, tuple[tuple[str, int, str], int | None]] = {}
    new_schools: dict[str, School] = {}
    for row in table:
        report.rows_read += 1
        p = parse_row(spec, row)
        v = p.values
        grade = v.get("grade")
        if not p.errors and (not isinstance(grade, int) or not 1 <= grade <= 9):
            p.errors.append(RowError(row.line, "学年", "grade"))
        if p.errors:
            report.errors.extend(p.errors)
            report.roster["invalid"] += 1
            continue
        code = str(v["school_code"])
        if code not in schools and code not in new_schools:
            new_schools[code] = School(code=code, name=str(v.get("school_name") or code),
                                       kind=SchoolKind.elementary if grade <= 6 else SchoolKind.junior_high)
        class_key = (code, grade, str(v.get("class_name") or "1"))
        student_no = str(v["student_no"])
        if student_no in placements:
            report.roster["duplicates"] += 1
            continue
        placements[student_no] = (class_key, v.get("attendance_no"))
        fields = {
            "name": n.nfkc(str(v["name"])), "name_kana": n.katakana(str(v.get("name_kana") or "")),
            "birth_date": v["birth_date"], "sex": v.get("sex"), "address": n.nfkc(str(v.get("address") or "")),
            "atena_no": v.get("atena_no") or None,
        }
        old = existing.get(student_no)
        if old is None:
            new_children.append({"student_no": student_no, **fields})
            report.roster["children_created"] += 1
        elif any(getattr(old, k) != val for k, val in fields.items()):
            child_updates.append({"id": old.id, **fields})
            report.roster["children_updated"] += 1
        else:
            report.roster["children_unchanged"] += 1
        if progress and report.rows_read % PROGRESS_EVERY == 0:
            progress("reading", report.rows_read, None)
    if progress:  # writes start here (nothing was written while reading)
        progress("saving", report.rows_read, report.rows_read)
    session.add_all(new_schools.values())
    session.flush()
    schools.update(new_schools)
    report.roster["schools_created"] += len(new_schools)
    for class_key, _ in placements.values():
        code, grade, class_name = class_key
        if (schools[code].id, grade, class_name) not in classes:
            klass = SchoolClass(school_id=schools[code].id, school_year_id=year.id, grade=grade, name=class_name)
            session.add(klass)
            classes[(schools[code].id, grade, class_name)] = klass
            report.roster["classes_created"] += 1
    session.flush()
    now = utcnow()
    for start in range(0, len(new_children), INSERT_CHUNK):
        session.execute(insert(Child), [{**c, "created_at": now} for c in new_children[start:start + INSERT_CHUNK]])
    if child_updates:
        session.execute(update(Child), child_updates)
    ids = {r.student_no: r.id for r in session.execute(select(Child.student_no, Child.id))} if new_children else \
        {no: r.id for no, r in existing.items()}
    new_enrolments: list[dict] = []
    enrolment_updates: list[dict] = []
    for student_no, ((code, grade, class_name), att) in placements.items():
        klass = classes[(schools[code].id, grade, class_name)]
        child_id = ids[student_no]
        e = enrolments.get(child_id)
        if e is None:
            new_enrolments.append({"child_id": child_id, "school_year_id": year.id, "class_id": klass.id,
                                   "attendance_no": att})
        elif e.class_id != klass.id or e.attendance_no != att:
            enrolment_updates.append({"id": e.id, "class_id": klass.id, "attendance_no": att})
    for start in range(0, len(new_enrolments), INSERT_CHUNK):
        session.execute(insert(Enrolment), new_enrolments[start:start + INSERT_CHUNK])
    if enrolment_updates:
        session.execute(update(Enrolment), enrolment_updates)
    report.roster["enrolments_created"] += len(new_enrolments)
    report.roster["enrolments_updated"] += len(enrolment_updates)
    report.roster = Counter({k: v for k, v in report.roster.items() if v})
    if child_updates or enrolment_updates:  # bulk updates bypass loaded objects
        for obj in list(session.identity_map.values()):
            if isinstance(obj, Child | Enrolment):
                session.expire(obj)
    batch = _new_batch(session, actor, "roster", table, filename)
    report.batch_id = batch.id
    batch.counts = report.as_dict()
    session.flush()
    audit(session, actor, "linkage.roster_import", detail={"batch": batch.id, "rows": report.rows_read})
    return report


# -- batches, export, retention, withdrawal ----------------------------------------


def rollback_batch(session: Session, actor: Principal, batch_id: int) -> int:
    """Remove what a batch stored (its decisions stay remembered). Returns the
    number of records removed."""
    batch = session.get(ImportBatch, batch_id)
    if batch is None or batch.status != "completed" or batch.source == "roster":
        return 0
    # Claimed before anything is removed: of two rollbacks at once, the second removes nothing.
    if not once.claim(session, ImportBatch, batch.id, ImportBatch.status == "completed",
                      status="rolled_back", rolled_back_at=utcnow(),
                      rolled_back_by=actor.id if actor.kind == "staff" else None):
        raise AlreadyRolledBack()
    record_ids = select(LinkedRecord.id).where(LinkedRecord.batch_id == batch_id)
    session.execute(delete(ReviewCandidate).where(
        ReviewCandidate.item_id.in_(select(ReviewItem.id).where(ReviewItem.record_id.in_(record_ids)))))
    session.execute(delete(ReviewItem).where(ReviewItem.record_id.in_(record_ids)))
    removed = session.execute(delete(LinkedRecord).where(LinkedRecord.batch_id == batch_id)).rowcount or 0
    session.flush()
    audit(session, actor, "linkage.rollback", detail={"batch": batch_id, "removed": removed})
    return removed


EXPORT_HEADER = ("source", "batch", "source_row", "student_no", "method", "score", "status")


def export_rows(session: Session) -> Iterator[tuple]:
    """One row per stored record of every source (the export contract), for children in the gate."""
    from consent.gate import consented_child_ids

    q = (
        select(LinkedRecord.source, LinkedRecord.batch_id, LinkedRecord.source_row, Child.student_no,
               LinkedRecord.method, LinkedRecord.score, LinkedRecord.status)
        .join(Child, Child.id == LinkedRecord.child_id)
        .where(LinkedRecord.child_id.in_(consented_child_ids(PURPOSE)))
        .order_by(LinkedRecord.source, LinkedRecord.batch_id, LinkedRecord.source_row)
    )
    for r in session.execute(q).yield_per(5000):
        yield (r.source, f"{r.source}-{r.batch_id}", r.source_row, r.student_no, r.method,
               "" if r.score is None else f"{r.score:.4f}", r.status)


def _delete_records(session: Session, where) -> int:
    ids = select(LinkedRecord.id).where(where)
    session.execute(delete(ReviewCandidate).where(
        ReviewCandidate.item_id.in_(select(ReviewItem.id).where(ReviewItem.record_id.in_(ids)))))
    session.execute(delete(ReviewItem).where(ReviewItem.record_id.in_(ids)))
    return session.execute(delete(LinkedRecord).where(where)).rowcount or 0


def expired_condition(today: date):
    """Records past their retention: the expiry set at import, or the
    catalogue's retention as it reads today (a period shortened since the
    import applies at once), or a source the catalogue no longer declares."""
    from datetime import UTC, datetime, time

    catalogue = load()
    conditions = [LinkedRecord.expires_on < today]
    declared = []
    for spec in catalogue.linkable:
        declared.append(spec.key)
        cutoff = today - relativedelta(months=spec.retention_months)
        conditions.append(and_(LinkedRecord.source == spec.key, LinkedRecord.record_date.is_not(None),
                               LinkedRecord.record_date < cutoff))
        conditions.append(and_(LinkedRecord.source == spec.key, LinkedRecord.record_date.is_(None),
                               LinkedRecord.created_at < datetime.combine(cutoff, time(0), tzinfo=UTC)))
    conditions.append(LinkedRecord.source.not_in(declared))
    return or_(*conditions)


def purge_expired(session: Session, today: date | None = None, actor: Principal | None = None) -> int:
    """Delete linked records past the catalogue's retention (the retention job)."""
    from portal.auth.principal import SYSTEM

    today = today or utcnow().date()
    removed = _delete_records(session, expired_condition(today))
    if removed:
        audit(session, actor or SYSTEM, "linkage.purge_expired", detail={"removed": removed})
    return removed


def purge_children(session: Session, child_ids: list[int]) -> dict[str, int]:
    """The consent purger for data_linkage: remove what is linked about these
    children, their review candidacies and remembered links."""
    if not child_ids:
        return {"linked_records": 0, "review_candidates": 0}
    ids = list(child_ids)
    removed = _delete_records(session, LinkedRecord.child_id.in_(ids))
    cands = session.execute(delete(ReviewCandidate).where(ReviewCandidate.child_id.in_(ids))).rowcount or 0
    session.execute(delete(LinkDecision).where(LinkDecision.child_id.in_(ids)))
    session.flush()
    return {"linked_records": removed, "review_candidates": cands}
