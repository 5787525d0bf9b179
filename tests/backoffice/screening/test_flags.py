"""The flag contract casework uses: manual flags, the queue, resolving, reasons in words."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backoffice.screening import service
from backoffice.screening.models import Flag, FlagStatus, Outcome, Resolution
from backoffice.screening.service import ScreeningError
from portal.audit.models import AuditEvent


@pytest.fixture
def teacher_and_child(make, consented, as_principal):
    teacher, klass = make.teacher_with_class(grade=4)
    child = consented(klass)
    return as_principal(teacher), child


def test_teacher_raises_manual_flag_and_sees_it_in_queue(session, teacher_and_child):
    teacher, child = teacher_and_child
    flag = service.raise_manual_flag(session, teacher, child.id, "  Often hungry in the morning  ", urgency=3)
    assert flag.source == "manual" and flag.status == FlagStatus.open and flag.urgency == 3
    assert flag.manual_text == "Often hungry in the morning"
    queue = session.scalars(service.open_flags_query(teacher)).all()
    assert [f.id for f in queue] == [flag.id]
    assert service.describe_reasons(flag, "en") == ["Raised by a staff member: Often hungry in the morning"]
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.action == "screening.flag_raised"))


def test_manual_flag_needs_a_reason(session, teacher_and_child):
    teacher, child = teacher_and_child
    with pytest.raises(ScreeningError, match="Write why"):
        service.raise_manual_flag(session, teacher, child.id, "   ")


def test_manual_flag_refused_for_another_teachers_child(session, make, consented, as_principal, teacher_and_child):
    _, child = teacher_and_child
    other, _ = make.teacher_with_class(grade=2)
    with pytest.raises(ScreeningError, match="not yours"):
        service.raise_manual_flag(session, as_principal(other), child.id, "worried")


def test_other_teacher_does_not_see_the_flag(session, make, as_principal, teacher_and_child):
    teacher, child = teacher_and_child
    service.raise_manual_flag(session, teacher, child.id, "worried")
    other, _ = make.teacher_with_class(grade=2)
    assert session.scalars(service.open_flags_query(as_principal(other))).all() == []


def test_resolve_flag_records_decision(session, teacher_and_child):
    teacher, child = teacher_and_child
    flag = service.raise_manual_flag(session, teacher, child.id, "worried")
    service.resolve_flag(session, teacher, flag.id, "Talked with the family; support plan", outcome="confirmed")
    assert flag.status == FlagStatus.resolved
    assert flag.resolution == Resolution.school_decided and flag.outcome == Outcome.confirmed
    assert flag.resolution_reason.startswith("Talked")
    assert session.scalars(service.open_flags_query(teacher)).all() == []
    with pytest.raises(ScreeningError, match="already resolved"):
        service.resolve_flag(session, teacher, flag.id, "again")


def test_resolve_flag_refuses_unknown_outcome(session, teacher_and_child):
    teacher, child = teacher_and_child
    flag = service.raise_manual_flag(session, teacher, child.id, "worried")
    with pytest.raises(ScreeningError, match="Unknown decision"):
        service.resolve_flag(session, teacher, flag.id, "", outcome="maybe")


def test_describe_reasons_in_both_languages(session, teacher_and_child):
    _, child = teacher_and_child
    flag = Flag(
        child_id=child.id, source="rule", rule_code="absence_recent", reason_key="rule:absence_recent",
        reasons=[
            {"indicator": "absence_rate_3m", "fact": 0.15, "params": {"op": ">=", "value": 0.1}},
            {"indicator": "low_mood", "fact": True, "params": {"op": "is", "value": True}},
        ],
    )
    session.add(flag)
    session.flush()
    en = service.describe_reasons(flag, "en")
    assert en == [
        "Absent on 15% of school days in the last 3 months (threshold ≥ 10%)",
        "Low mood on 3 of the last 5 check-ins",
    ]
    ja = service.describe_reasons(flag, "ja")
    assert len(ja) == 2 and ja != en
