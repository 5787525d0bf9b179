"""Audited reads of many children at once join the same hash chain as single audit rows."""

from __future__ import annotations

from sqlalchemy import select, text

from portal.audit import service as audit
from portal.audit.models import AuditEvent
from portal.auth import service as auth


def test_list_reads_write_one_row_per_child_in_the_chain(app, make, session):
    teacher = auth.principal_for(make.staff("teacher"))
    children = [make.child() for _ in range(3)]
    ids = [c.id for c in children]
    audit.record(session, teacher, "test.before")
    written = audit.record_child_reads(session, teacher, [ids[0], ids[1], ids[0], ids[2]], "surveys.class_today",
                                       purpose="wellbeing_survey", request_id="req-1")
    audit.record(session, teacher, "test.after")
    session.commit()

    assert written == 3  # a child listed twice is one read
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    reads = [r for r in rows if r.action == "child.read"]
    assert [r.child_id for r in reads] == ids
    assert {(r.actor_kind, r.actor_id, r.role, r.purpose, r.request_id) for r in reads} == {
        ("staff", teacher.id, "teacher", "wellbeing_survey", "req-1")
    }
    assert all(r.detail == {"view": "surveys.class_today"} for r in reads)
    # Each row's hash is what a single record() would have computed over the stored row, in sequence.
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    prev = audit.GENESIS
    for r in rows:
        assert r.prev_hash == prev and r.hash == audit.compute_hash(prev, r)
        prev = r.hash
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and "intact: 5 rows" in result.output


def test_an_altered_list_read_breaks_the_chain(app, make, session):
    teacher = auth.principal_for(make.staff("teacher"))
    ids = [make.child().id for _ in range(3)]
    audit.record_child_reads(session, teacher, ids, "screening.queue", purpose="screening")
    session.commit()
    middle = session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()[1]

    session.execute(text("UPDATE audit_event SET child_id = :c WHERE id = :id"), {"c": ids[0], "id": middle})
    session.commit()
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at row {middle}" in result.output and "altered" in result.output


def test_no_children_no_rows(make, session):
    assert audit.record_child_reads(session, auth.principal_for(make.staff("teacher")), [], "surveys.alerts") == 0
    assert session.scalars(select(AuditEvent)).all() == []
