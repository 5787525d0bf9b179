from __future__ import annotations

import io
import re

import pytest
from pypdf import PdfReader

from portal.people.models import Role


def pdf_pages(data: bytes) -> list[str]:
    """The text of each page of a PDF."""
    return [p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages]


def pins_by_student_no(data: bytes, student_nos) -> dict[str, str]:
    """Read each child's PIN from a card sheet: the 6 digits after their number."""
    text = "\n".join(pdf_pages(data))
    found = {}
    for no in student_nos:
        m = re.search(re.escape(no) + r"\D*?(\d{6})(?!\d)", text, re.S)
        if m:
            found[no] = m.group(1)
    return found


@pytest.fixture
def school_setup(make):
    """A school with two classes (teacher A's and teacher B's), a lead, and another school."""
    school = make.school()
    teacher_a = make.staff(Role.teacher, schools=[school])
    teacher_b = make.staff(Role.teacher, schools=[school])
    class_a = make.school_class(school, grade=2, name="1", teacher=teacher_a)
    class_b = make.school_class(school, grade=2, name="2", teacher=teacher_b)
    lead = make.staff(Role.school_lead, schools=[school])
    other_school = make.school()
    other_class = make.school_class(other_school, grade=2, name="1")
    return {
        "school": school, "teacher_a": teacher_a, "teacher_b": teacher_b, "class_a": class_a,
        "class_b": class_b, "lead": lead, "other_school": other_school, "other_class": other_class,
    }
