"""Importing and linking: the contract's behaviour, consent first."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from backoffice.linkage import service as review
from backoffice.linkage.importer import service
from backoffice.linkage.models import ImportBatch, LinkDecision, LinkedRecord, ReviewItem
from consent.testing import give_consent
from portal.audit.models import AuditEvent
from portal.auth.principal import SYSTEM
from portal.people.models import Child, Enrolment, Role
from portal.tabular import TabularError

from .conftest import csv_bytes

H_TEATE = "宛名番号,氏名,氏名カナ,生年月日,受給者宛名番号,支給状況,認定日"


def stored(session, **kw):
    q = select(LinkedRecord)
    for k, v in kw.items():
        q = q.where(getattr(LinkedRecord, k) == v)
    return list(session.scalars(q))


def test_links_by_number_checked_against_name_and_birth(session, kids):
    data = csv_bytes(H_TEATE, "A0001,高橋 花子,ﾀｶﾊｼ ﾊﾅｺ,H29.5.3,X1,支給中,2024-04-01",
                     "A0003,山田太郎,やまだ たろう,平成29年8月1日,X2,支給中,R6.4.1")
    report = service.import_file(session, SYSTEM, "jidou_teate", data, "teate.csv")
    assert report.linked["atena_no"] == 2
    recs = stored(session)
    assert {r.child_id for r in recs} == {kids["a"].id, kids["c"].id}
    # only declared columns are stored: no name, no recipient number
    assert set(recs[0].data) == {"payment_status", "certified_on"}


def test_stale_number_does_not_link_the_wrong_child(session, kids):
    # A0003 is 山田太郎's number, but the row is about 渡辺健.
    data = csv_bytes(H_TEATE, "A0003,渡邊 健,ワタナベ ケン,2016-11-20,X,支給中,2024-04-01")
    report = service.import_file(session, SYSTEM, "jidou_teate", data)
    assert report.stale_numbers == 1
    recs = stored(session)
    assert [r.child_id for r in recs] == [kids["d"].id]
    assert recs[0].method in ("probabilistic",) or recs[0].status == "review"


def test_non_consented_twin_is_dropped_not_linked_to_consented_twin(session, kids):
    data = csv_bytes(H_TEATE, ",髙橋 桃子,タカハシ モモコ,2017-05-03,,支給中,2024-04-01")
    report = service.import_file(session, SYSTEM, "jidou_teate", data)
    assert report.dropped["not_consented"] == 1
    assert stored(session) == []
    assert not stored(session, child_id=kids["b"].id)


def test_probabilistic_link_without_numbers(session, kids):
    data = csv_bytes("氏名,氏名カナ,生年月日,性別,住所,情報区分,内容",
                     "Yamada Taro,,20170801,男,ひだまり町二丁目1番,相談,見守りをお願いします")
    report = service.import_file(session, SYSTEM, "external", data)
    total = sum(report.linked.values()) + report.review
    assert total == 1
    rec = stored(session)[0]
    assert rec.child_id == kids["c"].id
    assert "content" not in rec.data and "見守り" in rec.secret


def test_unknown_person_dropped_as_no_match(session, kids):
    data = csv_bytes(H_TEATE, ",佐藤 次郎,サトウ ジロウ,2010-01-01,,支給中,2024-04-01")
    report = service.import_file(session, SYSTEM, "jidou_teate", data)
    assert report.dropped["no_match"] == 1


def test_reimport_same_file_changes_nothing(session, kids):
    data = csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01")
    service.import_file(session, SYSTEM, "jidou_teate", data)
    before = session.scalar(select(func.count(LinkedRecord.id)))
    again = service.import_file(session, SYSTEM, "jidou_teate", data)
    assert again.already_imported
    assert session.scalar(select(func.count(LinkedRecord.id))) == before
    assert session.scalar(select(func.count(ImportBatch.id))) == 1
    # the same row in another file is recognised by its content
    other = csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01", "")
    other += b"\r\n"
    rep = service.import_file(session, SYSTEM, "jidou_teate", other)
    assert rep.unchanged == 1 and sum(rep.linked.values()) == 0


def test_invalid_rows_named_by_line_and_column(session, kids):
    data = csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-02-30,,支給中,2024-04-01",
                     'A0003,"=HYPERLINK(""x"")",,2017-08-01,,支給中,2024-04-01',
                     "A0004,渡辺 健,,,,支給中,2024-04-01")
    report = service.import_file(session, SYSTEM, "jidou_teate", data)
    assert report.dropped["invalid"] == 3
    errs = {(e.line, e.column, e.code) for e in report.errors}
    assert (2, "生年月日", "date") in errs
    assert (3, "氏名", "formula") in errs
    assert (4, "生年月日", "required") in errs
    assert any("line 2, column 生年月日" in line for line in report.lines())


def test_missing_required_column_rejects_whole_file(session, kids):
    with pytest.raises(TabularError) as e:
        service.import_file(session, SYSTEM, "jidou_fuyou", csv_bytes("氏名,生年月日", "x,2017-01-01"))
    assert e.value.column == "支給区分"
    assert session.scalar(select(func.count(ImportBatch.id))) == 0


def test_unknown_source_rejected(session):
    with pytest.raises(TabularError):
        service.import_file(session, SYSTEM, "nonsense", b"a\r\n1\r\n")


def test_cp932_attendance_by_student_no(session, kids):
    data = csv_bytes("児童生徒番号,氏名,対象年月,授業日数,欠席日数,備考",
                     "Ｓ０００１,髙橋 花子,R7.6,20,3,x", "S0003,山田 太郎,2025-06,20,0,y", encoding="cp932")
    report = service.import_file(session, SYSTEM, "attendance", data)
    assert report.encoding == "cp932"
    assert report.unknown_columns == ["備考"]
    assert report.linked["student_no"] == 2
    rec = stored(session, child_id=kids["a"].id)[0]
    assert rec.record_date == date(2025, 6, 1) and rec.data["days_absent"] == 3


def test_rollback_batch_removes_its_records(session, kids):
    data = csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01")
    rep = service.import_file(session, SYSTEM, "jidou_teate", data)
    assert service.rollback_batch(session, SYSTEM, rep.batch_id) == 1
    assert stored(session) == []
    # after a rollback the same file may be imported again
    rep2 = service.import_file(session, SYSTEM, "jidou_teate", data)
    assert not rep2.already_imported and sum(rep2.linked.values()) == 1


def _review_item(session, kids):
    # Kana only, birth date one digit off: grey zone.
    data = csv_bytes(H_TEATE, ",やまだ たろう,,2017-08-11,,支給中,2024-04-01")
    service.import_file(session, SYSTEM, "jidou_teate", data)
    return session.scalar(select(ReviewItem))


def test_grey_zone_goes_to_review_and_decision_is_remembered(session, kids, make):
    item = _review_item(session, kids)
    assert item is not None
    steward = make.staff(Role.data_steward)
    from portal.auth import service as auth

    p = auth.principal_for(steward)
    detail = review.review_detail(session, p, item.id)
    assert detail["candidates"][0]["child"].id == kids["c"].id
    review.decide(session, p, item.id, "reject")
    assert session.scalar(select(func.count(ReviewItem.id))) == 0
    assert stored(session) == []
    assert session.scalar(select(LinkDecision)).decision == "reject"
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "linkage.review.reject"))
    # the same row in a new file is not asked about again
    data = csv_bytes(H_TEATE, ",やまだ たろう,,2017-08-11,,支給中,2024-04-01", "")
    rep = service.import_file(session, SYSTEM, "jidou_teate", data + b"\r\n")
    assert rep.review == 0 and rep.dropped["rejected"] == 1


def test_review_link_is_clerical(session, kids, make):
    item = _review_item(session, kids)
    from portal.auth import service as auth

    p = auth.principal_for(make.staff(Role.data_steward))
    rec = review.decide(session, p, item.id, "link", kids["c"].id)
    assert rec.method == "clerical" and rec.status == "linked"


def test_withdrawal_purges_linked_records(session, kids):
    data = csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01")
    service.import_file(session, SYSTEM, "jidou_teate", data)
    give_consent(session, kids["a"], "data_linkage", withdraw=True)
    session.flush()
    assert stored(session, child_id=kids["a"].id) == []


def test_purge_expired(session, kids):
    data = csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-05-03,,支給中,2020-04-01",
                     "A0003,山田 太郎,,2017-08-01,,支給中,2026-04-01")
    service.import_file(session, SYSTEM, "jidou_teate", data, today=date(2026, 5, 1))
    assert service.purge_expired(session, today=date(2026, 5, 1)) == 1
    assert [r.child_id for r in stored(session)] == [kids["c"].id]


def test_export_rows_follow_contract(session, kids):
    data = csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01")
    rep = service.import_file(session, SYSTEM, "jidou_teate", data)
    rows = list(service.export_rows(session))
    assert rows == [("jidou_teate", f"jidou_teate-{rep.batch_id}", 1, "S0001", "atena_no", rows[0][5], "linked")]


def test_roster_import_creates_and_updates(session, make):
    make.year()
    header = "児童生徒番号,宛名番号,氏名,氏名カナ,生年月日,性別,住所,学校コード,学校名,学年,組,出席番号"
    data = csv_bytes(header, "R1,B1,山田 一郎,ﾔﾏﾀﾞ ｲﾁﾛｳ,H30.4.2,1,みまもり町1-1,E900,テスト小,2,1,1",
                     "R2,,佐藤 二子,さとう ふたこ,2018-06-01,女,,E900,テスト小,2,1,2",
                     "R3,,鈴木 三郎,,2018-13-01,男,,E900,テスト小,2,1,3")
    rep = service.import_roster(session, SYSTEM, data, "roster.csv")
    assert rep.roster["children_created"] == 2 and rep.roster["invalid"] == 1
    assert rep.roster["schools_created"] == 1 and rep.roster["classes_created"] == 1
    child = session.scalar(select(Child).where(Child.student_no == "R1"))
    assert child.name_kana == "ヤマダ イチロウ" and child.birth_date == date(2018, 4, 2) and child.sex == "M"
    assert session.scalar(select(func.count(Enrolment.id))) == 2
    again = service.import_roster(session, SYSTEM, data)
    assert again.already_imported
    moved = csv_bytes(header, "R1,B1,山田 一郎,ﾔﾏﾀﾞ ｲﾁﾛｳ,H30.4.2,1,みまもり町1-1,E900,テスト小,2,2,5")
    rep = service.import_roster(session, SYSTEM, moved)
    assert rep.roster["enrolments_updated"] == 1 and rep.roster["children_unchanged"] == 1



def test_number_without_birth_date_confirmed_by_school_grade_and_class():
    """Attendance has no birth date: a mistyped name (only close) links by
    number when the record's school, grade and class are the child's
    enrolment, not when they are another school's (a stale number)."""
    from backoffice.linkage import matching as m

    child = m.person(name="山田 太郎", kana="ヤマダ タロウ", birth_date=date(2017, 8, 1), student_no="S0003",
                     school="E001", grade=3, klass="1")
    others = {i: m.person(name=f"佐藤 {i}", birth_date=date(2016, 1, 1 + i % 28), student_no=f"T{i}")
              for i in range(2, 2000)}
    index = m.ChildIndex({1: child, **others}, {1})
    matcher = m.Matcher(index, m.Parameters(prior_log2=-14.0))
    same = matcher.match(m.person(name="山田 太朗", student_no="S0003", school="E001", grade=3, klass="1"))
    assert (same.kind, same.method, same.child_id) == ("link", "student_no", 1)
    other = matcher.match(m.person(name="山田 太朗", student_no="S0003", school="E002", grade=3, klass="1"))
    assert other.kind != "link" and other.stale_number


def test_utf8_with_and_without_bom(session, kids):
    for day, encoding in ((1, "utf-8-sig"), (2, "utf-8")):
        expected = encoding
        data = csv_bytes(H_TEATE, f"A0001,高橋 花子,,2017-05-03,,支給中,2024-04-0{day}", encoding=encoding)
        report = service.import_file(session, SYSTEM, "jidou_teate", data)
        assert report.encoding == expected and report.linked["atena_no"] == 1


def test_both_twins_consented_each_gets_their_own_record(session, kids):
    give_consent(session, kids["b"], "data_linkage")
    session.flush()
    data = csv_bytes(H_TEATE, ",髙橋 桃子,タカハシ モモコ,2017-05-03,,支給中,2024-04-01",
                     ",高橋 花子,たかはし はなこ,H29.5.3,,支給停止,2024-04-01",
                     "A0002,高橋 花子,タカハシ ハナコ,2017-05-03,,支給中,2024-05-01")  # 桃子's number on 花子's row
    report = service.import_file(session, SYSTEM, "jidou_teate", data)
    by_row = {r.source_row: r.child_id for r in stored(session)}
    assert by_row == {1: kids["b"].id, 2: kids["a"].id, 3: kids["a"].id}
    assert report.stale_numbers == 1


def test_retention_follows_the_catalogue_as_it_reads_today(session, kids, monkeypatch):
    from backoffice.linkage import catalogue

    data = csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-05-03,,支給中,2026-01-01")
    service.import_file(session, SYSTEM, "jidou_teate", data, today=date(2026, 2, 1))
    assert service.purge_expired(session, today=date(2026, 3, 1)) == 0  # 24 months
    cat = catalogue.load()
    spec = cat.source("jidou_teate")
    shorter = catalogue.Catalogue(cat.version, cat.purpose,
                                  {**cat.sources, "jidou_teate": spec.__class__(**{**spec.__dict__, "retention_months": 1})})
    monkeypatch.setattr(service, "load", lambda: shorter)
    assert service.purge_expired(session, today=date(2026, 3, 1)) == 1
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "linkage.purge_expired"))
