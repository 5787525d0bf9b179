"""Screening pages: queue, manual flags, rule editing and approval, evaluation, export."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from backoffice.screening import model as ml
from backoffice.screening import service
from backoffice.screening.models import Flag, RuleSet, RuleSetStatus
from portal.audit.models import AuditEvent
from portal.auth.principal import SYSTEM

from .conftest import AS_OF


def _active(session, make, as_principal, source="absence_recent [2]: absence_rate_3m >= 10%"):
    a, b = make.staff("data_steward"), make.staff("data_steward")
    rs = service.draft_rule_set(session, as_principal(a), "", source)
    service.submit_rule_set(session, as_principal(a), rs.id)
    service.approve_rule_set(session, as_principal(b), rs.id)
    return rs


def test_teacher_queue_shows_reasons_and_audits(session, make, consented, records, as_principal, login, client):
    teacher, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    for m in (5, 6, 7):
        records.attendance(child, date(2026, m, 1), absent=3)
    _active(session, make, as_principal)
    service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)
    session.commit()
    login(teacher)
    client.post("/language", data={"locale": "en"})
    html = client.get("/staff/screening/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert child.name in html
    assert session.scalar(select(AuditEvent.id).where(AuditEvent.action == "child.read", AuditEvent.child_id == child.id))


def test_manual_flag_form_refuses_empty_reason(session, make, consented, login, post_form):
    teacher, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    session.commit()
    login(teacher)
    resp = post_form(f"/staff/screening/child/{child.id}", {"reason": "  ", "urgency": "2"})
    assert resp.status_code == 200
    assert session.scalar(select(Flag.id)) is None
    resp = post_form(f"/staff/screening/child/{child.id}", {"reason": "Hungry every morning", "urgency": "3"})
    assert resp.status_code == 302
    assert session.scalar(select(Flag.urgency)) == 3


def test_other_teacher_gets_404_for_child(session, make, consented, login, client):
    _, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    other, _ = make.teacher_with_class(grade=3)
    session.commit()
    login(other)
    assert client.get(f"/staff/screening/child/{child.id}").status_code == 404


def test_resolve_form(session, make, consented, login, post_form, as_principal):
    teacher, klass = make.teacher_with_class(grade=5)
    child = consented(klass)
    flag = service.raise_manual_flag(session, as_principal(teacher), child.id, "worried")
    session.commit()
    login(teacher)
    resp = post_form(f"/staff/screening/flag/{flag.id}/resolve", {"outcome": "confirmed", "reason": "plan made",
                                                                  "child_id": child.id},
                     page=f"/staff/screening/child/{child.id}")
    assert resp.status_code == 302
    session.expire_all()
    assert session.get(Flag, flag.id).outcome == "confirmed"


def test_steward_drafts_invalid_rule_sees_clear_error(session, make, login, post_form):
    steward = make.staff("data_steward", locale="en")
    session.commit()
    login(steward)
    resp = post_form("/staff/screening/rules/new", {"title": "x", "source": "a: absence_rate_3m >= ten"})
    assert resp.status_code == 200
    assert "must be a number" in resp.get_data(as_text=True) or "数" in resp.get_data(as_text=True)
    assert session.scalar(select(RuleSet.id)) is None


def test_author_cannot_approve_in_page(session, make, login, post_form, client):
    steward = make.staff("data_steward")
    session.commit()
    login(steward)
    resp = post_form("/staff/screening/rules/new", {"title": "x", "source": "a: low_mood"})
    rs_id = session.scalar(select(RuleSet.id))
    post_form(f"/staff/screening/rules/{rs_id}/submit", {}, page=f"/staff/screening/rules/{rs_id}")
    resp = post_form(f"/staff/screening/rules/{rs_id}/approve", {"note": ""}, page="/staff/screening/rules/new")
    assert resp.status_code == 302
    session.expire_all()
    assert session.get(RuleSet, rs_id).status == RuleSetStatus.submitted


def test_evaluation_page_and_export_for_analyst(session, make, login, client):
    m = ml.train(session, SYSTEM, ml.synthetic_decisions(300, seed=1))
    assert m.id
    analyst = make.staff("analyst")
    session.commit()
    login(analyst)
    assert client.get("/staff/screening/evaluation").status_code == 200
    resp = client.get("/staff/screening/evaluation.csv")
    assert resp.status_code == 200 and b"auc" in resp.data


def test_train_with_too_few_decisions_flashes_message(session, make, login, post_form, client):
    steward = make.staff("data_steward", locale="en")
    session.commit()
    login(steward)
    resp = post_form("/staff/screening/model/train", {}, page="/staff/screening/evaluation", follow_redirects=True)
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert "Too few teacher decisions" in body or "判断" in body


def _statements(session, fn):
    from sqlalchemy import event

    seen = []

    def count(conn, cursor, statement, *a, **k):
        seen.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        resp = fn()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert resp.status_code == 200
    return len(seen)


def test_queue_and_child_pages_query_a_constant_number_of_times(session, make, consented, records, as_principal,
                                                                 login, client):
    teacher, klass = make.teacher_with_class(grade=5)
    children = [consented(klass) for _ in range(6)]
    _active(session, make, as_principal, "absence_recent [2]: absence_rate_3m >= 10%\nmood: low_mood")
    for c in children:
        for m in (5, 6, 7):
            records.attendance(c, date(2026, m, 1), absent=3)
        records.signal(c, "low_mood_streak", days_ago=2)
    first = children[0]
    for c in children[1:]:
        service.raise_manual_flag(session, as_principal(teacher), c.id, "worried")
    session.commit()
    login(teacher)

    def queue_with(n):
        from sqlalchemy import update

        from backoffice.screening.models import FlagStatus

        session.execute(update(Flag).where(Flag.child_id.in_([c.id for c in children[n:]]))
                        .values(status=FlagStatus.resolved).execution_options(synchronize_session=False))
        session.commit()
        return _statements(session, lambda: client.get("/staff/screening/"))

    service.run_screening(session, SYSTEM, trigger="test", as_of=AS_OF)
    session.commit()
    many = _statements(session, lambda: client.get("/staff/screening/"))
    few = queue_with(1)
    assert many == few
    one_flag = _statements(session, lambda: client.get(f"/staff/screening/child/{children[1].id}"))
    three_flags = _statements(session, lambda: client.get(f"/staff/screening/child/{first.id}"))
    assert one_flag == three_flags
