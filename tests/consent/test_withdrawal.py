"""Withdrawal takes effect: the gate at once, the purgers, the audit row with counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, delete, func, insert, select

from consent import hooks, service
from consent.gate import consented_child_ids, is_consented
from consent.models import Action, Party, PendingPurge, PurgeStatus
from consent.testing import ensure_purposes, give_consent
from portal.audit.models import AuditEvent
from portal.orm import utcnow

# A stand-in for another domain's table holding data for a purpose.
_meta = MetaData()
held = Table("consent_test_held", _meta, Column("id", Integer, primary_key=True),
             Column("child_id", Integer))


@pytest.fixture
def held_table(app, session):
    from portal.extensions import db

    _meta.create_all(db.engine)

    def purger(s, child_ids):
        n = s.execute(delete(held).where(held.c.child_id.in_(child_ids))).rowcount
        return {"consent_test_rows": n}

    hooks.register_purger("data_linkage", purger)
    yield held
    hooks.unregister_purger("data_linkage", purger)
    session.rollback()
    _meta.drop_all(db.engine)


def test_withdrawal_removes_the_purposes_rows_and_writes_an_audit_row(session, make, held_table, as_guardian):
    child, other = make.child(grade=4), make.child(grade=4)
    g = make.guardian(child)
    make.guardian(other)
    give_consent(session, child, "data_linkage")
    give_consent(session, other, "data_linkage")
    session.execute(insert(held_table), [{"child_id": child.id}, {"child_id": child.id}, {"child_id": other.id}])
    p = service.purpose_by_code(session, "data_linkage")

    service.record_event(session, as_guardian(g), child.id, p, Party.guardian, Action.withdraw)

    assert child.id not in set(session.scalars(consented_child_ids("data_linkage")))
    rows = session.execute(select(held_table.c.child_id)).scalars().all()
    assert rows == [other.id], "only the withdrawn child's rows are gone"
    ev = session.scalar(select(AuditEvent).where(AuditEvent.action == "consent.purge"))
    assert ev.child_id == child.id and ev.purpose == "data_linkage"
    assert ev.detail["counts"]["consent_test_rows"] == 2
    assert session.scalar(select(PendingPurge.status)) == PurgeStatus.done


def test_a_retention_window_delays_the_purge_until_the_job_runs(session, make, held_table, as_guardian):
    child = make.child(grade=4)
    g = make.guardian(child)
    give_consent(session, child, "data_linkage")
    p = service.purpose_by_code(session, "data_linkage")
    p.retention_days = 7
    session.execute(insert(held_table), [{"child_id": child.id}])
    service.record_event(session, as_guardian(g), child.id, p, Party.guardian, Action.withdraw)
    assert not is_consented(session, child.id, "data_linkage"), "the gate closes at once"
    assert session.scalar(select(func.count()).select_from(held_table)) == 1
    assert service.run_due_purges(session, utcnow() + timedelta(days=6)) == 0
    assert service.run_due_purges(session, utcnow() + timedelta(days=8)) == 1
    assert session.scalar(select(func.count()).select_from(held_table)) == 0


def test_purge_is_cancelled_when_consent_was_given_again(session, make, held_table, as_guardian):
    child = make.child(grade=4)
    g = make.guardian(child)
    give_consent(session, child, "data_linkage")
    p = service.purpose_by_code(session, "data_linkage")
    p.retention_days = 7
    session.execute(insert(held_table), [{"child_id": child.id}])
    service.record_event(session, as_guardian(g), child.id, p, Party.guardian, Action.withdraw)
    service.record_event(session, as_guardian(g), child.id, p, Party.guardian, Action.grant)
    service.run_due_purges(session, utcnow() + timedelta(days=8))
    assert session.scalar(select(PendingPurge.status)) == PurgeStatus.cancelled
    assert session.scalar(select(func.count()).select_from(held_table)) == 1


def test_junior_high_childs_own_withdrawal_purges_too(session, make, held_table):
    from portal.auth.principal import Principal

    child = make.child(grade=8)
    make.guardian(child)
    give_consent(session, child, "data_linkage")
    session.execute(insert(held_table), [{"child_id": child.id}])
    p = service.purpose_by_code(session, "data_linkage")
    service.record_event(session, Principal(kind="student", id=child.id, role="student"), child.id, p,
                         Party.child, Action.withdraw)
    assert session.scalar(select(func.count()).select_from(held_table)) == 0


# -- bad input -----------------------------------------------------------------------


def test_second_guardian_withdrawing_while_the_first_grants_is_refused_clearly(session, make, as_guardian):
    child = make.child(grade=4)
    g1, g2 = make.guardian(child), make.guardian(child)
    p = ensure_purposes(session)["data_linkage"]
    # Both opened the page when nothing was recorded (expected last event: none).
    service.record_event(session, as_guardian(g1), child.id, p, Party.guardian, Action.grant, expected_last_event_id=None)
    with pytest.raises(service.ChangedMeanwhile):
        service.record_event(session, as_guardian(g2), child.id, p, Party.guardian, Action.withdraw,
                             expected_last_event_id=None)
    assert is_consented(session, child.id, "data_linkage")


def test_double_submitted_form_records_once(session, make, as_guardian):
    child = make.child(grade=4)
    g = make.guardian(child)
    p = ensure_purposes(session)["data_linkage"]
    service.record_event(session, as_guardian(g), child.id, p, Party.guardian, Action.grant, expected_last_event_id=None)
    with pytest.raises(service.AlreadyRecorded):
        service.record_event(session, as_guardian(g), child.id, p, Party.guardian, Action.grant,
                             expected_last_event_id=None)
    assert len(service.history(session, child.id)) == 1


def test_consent_for_a_child_who_is_not_yours_is_refused(session, make, as_guardian):
    child, stranger_child = make.child(), make.child()
    g = make.guardian(child)
    make.guardian(stranger_child)
    p = ensure_purposes(session)["data_linkage"]
    with pytest.raises(service.NotAllowed):
        service.record_event(session, as_guardian(g), stranger_child.id, p, Party.guardian, Action.grant)
    assert service.history(session, stranger_child.id) == []


def test_withdrawal_dated_before_its_grant_is_refused(session, make, as_staff):
    from consent.models import Channel

    child = make.child(grade=4)
    make.guardian(child)
    steward = make.staff("data_steward")
    give_consent(session, child, "data_linkage")
    p = service.purpose_by_code(session, "data_linkage")
    with pytest.raises(service.WithdrawalBeforeGrant):
        service.record_event(session, as_staff(steward), child.id, p, Party.guardian, Action.withdraw,
                             channel=Channel.paper, at=utcnow() - timedelta(days=3))
    assert is_consented(session, child.id, "data_linkage")


def test_elementary_student_cannot_record_own_consent(session, make):
    from portal.auth.principal import Principal

    child = make.child(grade=5)
    p = ensure_purposes(session)["data_linkage"]
    with pytest.raises(service.NotAllowed):
        service.record_event(session, Principal(kind="student", id=child.id, role="student"), child.id, p,
                             Party.child, Action.grant)


def test_a_teacher_cannot_record_consent(session, make, as_staff):
    child = make.child(grade=4)
    teacher = make.staff("teacher")
    p = ensure_purposes(session)["data_linkage"]
    with pytest.raises(service.NotAllowed):
        service.record_event(session, as_staff(teacher), child.id, p, Party.guardian, Action.grant)


def test_withdrawing_on_the_family_page_deletes_linked_records_at_once(app, session, make, login, monkeypatch):
    """End to end with the real linkage purger: rows gone, audit row with counts, nothing left to disclose."""
    from datetime import date

    from backoffice.linkage.importer import service as importer
    from backoffice.linkage.models import LinkedRecord
    from consent import rights
    from portal.auth.principal import SYSTEM
    from tests.conftest import csrf_token_from

    monkeypatch.setitem(app.config, "LINKAGE_IMPORT_INLINE", True)
    klass = make.school_class(grade=3)
    child = make.child(klass, student_no="S0101", atena_no="A0101", name="髙橋 花子", name_kana="タカハシ ハナコ",
                       birth_date=date(2017, 5, 3), sex="F", address="みまもり町1-2-3")
    other = make.child(klass, student_no="S0102", atena_no="A0102", name="山田 太郎", name_kana="ヤマダ タロウ",
                       birth_date=date(2017, 8, 1), sex="M", address="ひだまり町2-1")
    g = make.guardian(child)
    make.guardian(other)
    give_consent(session, child, "data_linkage")
    give_consent(session, other, "data_linkage")
    data = ("宛名番号,氏名,氏名カナ,生年月日,受給者宛名番号,支給状況,認定日\r\n"
            "A0101,高橋 花子,,2017-05-03,,支給中,2024-04-01\r\n"
            "A0102,山田 太郎,,2017-08-01,,支給中,2024-04-01\r\n").encode()
    importer.import_file(session, SYSTEM, "jidou_teate", data, "teate.csv")
    assert session.scalar(select(func.count(LinkedRecord.id)).where(LinkedRecord.child_id == child.id)) == 1
    before = rights.disclosure(session, SYSTEM, child.id)
    assert {"linkage", "screening", "surveys.checkins", "casework"} <= {s["key"] for s in before["sections"]}
    assert [r["source"] for r in next(s for s in before["sections"] if s["key"] == "linkage")["rows"]] == ["jidou_teate"]
    session.commit()

    fam = login(g, app.test_client())
    url = f"/family/consent/children/{child.id}/data_linkage"
    html = fam.get(url).get_data(as_text=True)
    import re

    last = re.search(r'name="last_event" value="([^"]*)"', html).group(1)
    resp = fam.post(url, data={"csrf_token": csrf_token_from(html), "action": "withdraw", "last_event": last,
                               "confirm": "y"})
    assert resp.status_code == 302
    session.expire_all()
    assert session.scalar(select(func.count(LinkedRecord.id)).where(LinkedRecord.child_id == child.id)) == 0
    assert session.scalar(select(func.count(LinkedRecord.id)).where(LinkedRecord.child_id == other.id)) == 1
    purge = session.scalar(select(AuditEvent).where(AuditEvent.action == "consent.purge"))
    assert purge.child_id == child.id and purge.detail["counts"]["linked_records"] == 1
    assert not is_consented(session, child.id, "data_linkage")
    disclosed = rights.disclosure(session, SYSTEM, child.id)
    linkage = next(s for s in disclosed["sections"] if s["key"] == "linkage")
    assert linkage["rows"] == []


def test_the_scheduled_purge_job_deletes_when_the_window_ends(app, session, make, held_table, as_guardian):
    from portal.scheduler import registered_jobs, run_job

    assert "consent.purges" in registered_jobs()
    child = make.child(grade=4)
    g = make.guardian(child)
    give_consent(session, child, "data_linkage")
    p = service.purpose_by_code(session, "data_linkage")
    p.retention_days = 30
    session.execute(insert(held_table), [{"child_id": child.id}])
    service.record_event(session, as_guardian(g), child.id, p, Party.guardian, Action.withdraw)
    session.commit()
    assert run_job("consent.purges", utcnow() + timedelta(days=29), app=app)
    assert session.scalar(select(func.count()).select_from(held_table)) == 1
    assert run_job("consent.purges", utcnow() + timedelta(days=31), app=app)
    assert session.scalar(select(func.count()).select_from(held_table)) == 0
    purge = session.scalar(select(AuditEvent).where(AuditEvent.action == "consent.purge"))
    assert purge.child_id == child.id and purge.detail["counts"]["consent_test_rows"] == 1


def test_withdrawal_purges_even_when_the_child_had_already_left_the_gate(session, make, held_table, as_guardian):
    child = make.child(grade=7)  # junior high: the child's own consent is needed too, and was never given
    g = make.guardian(child)
    p = ensure_purposes(session)["data_linkage"]
    service.record_event(session, as_guardian(g), child.id, p, Party.guardian, Action.grant)
    assert not is_consented(session, child.id, "data_linkage")
    session.execute(insert(held_table), [{"child_id": child.id}])  # held from an earlier grade, say
    service.record_event(session, as_guardian(g), child.id, p, Party.guardian, Action.withdraw)
    assert session.scalar(select(func.count()).select_from(held_table)) == 0
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "consent.purge")).detail["counts"][
        "consent_test_rows"] == 1
