"""Coverage (consent rates by school, grade and purpose) and the public transparency pages."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, literal, select, union_all
from sqlalchemy.orm import Session

from consent import hooks
from consent.gate import consented_child_ids
from consent.models import ConsentPurpose
from consent.service import active_purposes
from portal.auth.access import current_year_id_subquery
from portal.people.models import Enrolment, School, SchoolClass


@dataclass
class CoverageRow:
    school: School
    grade: int
    enrolled: int
    consented: dict[str, int] = field(default_factory=dict)

    def rate(self, code: str) -> float:
        return (self.consented.get(code, 0) / self.enrolled) if self.enrolled else 0.0


def coverage(session: Session) -> tuple[list[ConsentPurpose], list[CoverageRow]]:
    """Three queries whatever the number of schools, classes and children."""
    purposes = active_purposes(session)
    year = current_year_id_subquery()
    base = (
        select(SchoolClass.school_id, SchoolClass.grade, Enrolment.child_id)
        .join(Enrolment, Enrolment.class_id == SchoolClass.id)
        .where(Enrolment.school_year_id == year)
    )
    enrolled = session.execute(
        select(School, SchoolClass.grade, func.count(Enrolment.child_id))
        .join(SchoolClass, SchoolClass.school_id == School.id)
        .join(Enrolment, Enrolment.class_id == SchoolClass.id)
        .where(Enrolment.school_year_id == year)
        .group_by(School.id, SchoolClass.grade)
        .order_by(School.code, SchoolClass.grade)
    ).all()
    rows = {(school.id, grade): CoverageRow(school, grade, n) for school, grade, n in enrolled}
    if purposes and rows:
        parts = []
        for p in purposes:
            b = base.subquery()
            parts.append(
                select(b.c.school_id, b.c.grade, literal(p.code).label("code"), func.count().label("n"))
                .where(b.c.child_id.in_(consented_child_ids(p.code)))
                .group_by(b.c.school_id, b.c.grade)
            )
        for school_id, grade, code, n in session.execute(union_all(*parts)).all():
            rows[(school_id, grade)].consented[code] = n
    return purposes, list(rows.values())


def coverage_totals(purposes, rows: list[CoverageRow]) -> CoverageRow | None:
    if not rows:
        return None
    total = CoverageRow(school=None, grade=0, enrolled=sum(r.enrolled for r in rows))
    for p in purposes:
        total.consented[p.code] = sum(r.consented.get(p.code, 0) for r in rows)
    return total


def file_register(session: Session, locale: str) -> list[dict]:
    """The personal-information file register (個人情報ファイル簿), one entry per file."""
    entries = [
        {
            "name": _l("Children master (school roster)"),
            "purpose_code": None,
            "purpose": _l("Enrolment, sign-in and contact with families"),
            "items": [_l("Student number"), _l("Name"), _l("Name (kana)"), _l("Date of birth"), _l("Sex"),
                      _l("Address"), _l("School, grade and class")],
            "source": _l("School roster (education board)"),
            "retention": _l("While the child is at school"),
        },
        {
            "name": _l("Consent records"),
            "purpose_code": None,
            "purpose": _l("Proof of consent given and withdrawn"),
            "items": [_l("Decision, date, channel and text version"), _l("Paper form number")],
            "source": _l("Families (online and on paper)"),
            "retention": _l("Kept as proof while any record of the child is held"),
        },
    ]
    for p in active_purposes(session):
        entries.append(
            {
                "name": p.text("title", locale),
                "purpose_code": p.code,
                "purpose": p.text("summary", locale),
                "items": p.text("data_items", locale) or [],
                "source": "、".join(p.text("sources", locale) or []) if locale == "ja" else ", ".join(p.text("sources", locale) or []),
                "retention": p.text("retention", locale),
            }
        )
    entries.extend(hooks.file_register_entries())
    return entries
