"""Pages: upload with preview and report, review decisions, the per-child view."""

from __future__ import annotations

import io

from sqlalchemy import select

from backoffice.linkage.importer import service
from backoffice.linkage.models import LinkedRecord, ReviewItem
from portal.audit.models import AuditEvent
from portal.auth.principal import SYSTEM
from portal.people.models import Role

from .conftest import csv_bytes

H = "宛名番号,氏名,氏名カナ,生年月日,受給者宛名番号,支給状況,認定日"


def _upload(client, data: bytes, source="jidou_teate", name="teate.csv"):
    from tests.conftest import csrf_token_from

    html = client.get("/staff/linkage/").get_data(as_text=True)
    return client.post("/staff/linkage/", data={"csrf_token": csrf_token_from(html), "source": source,
                                                "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_steward_uploads_previews_and_imports_cp932(client, login, make, session, kids):
    login(make.staff(Role.data_steward))
    session.commit()
    resp = _upload(client, csv_bytes(H, "A0001,髙橋 花子,ﾀｶﾊｼ ﾊﾅｺ,H29.5.3,,支給中,R6.4.1", encoding="cp932"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "cp932" in html and "髙橋 花子" in html
    assert session.scalar(select(LinkedRecord)) is None  # preview stores nothing
    import re

    from tests.conftest import csrf_token_from
    token = re.search(r'name="token"[^>]*value="([^"]+)"', html).group(1)
    resp = client.post("/staff/linkage/confirm", data={"csrf_token": csrf_token_from(html), "token": token,
                                                       "source": "jidou_teate", "filename": "teate.csv"})
    assert resp.status_code == 302 and "/jobs/" in resp.headers["Location"]
    job_url = resp.headers["Location"]
    status = client.get(job_url + "/status").get_json()
    assert status["status"] == "done" and status["done"] == status["total"] == 1 and status["batch"]
    page = client.get(job_url, follow_redirects=True).get_data(as_text=True)
    assert 'id="linked">1' in page


def test_upload_of_bad_file_shows_message(client, login, make, session):
    login(make.staff(Role.data_steward))
    session.commit()
    resp = _upload(client, "氏名\nx\n".encode("utf-16"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "UTF-8" in html
    resp = _upload(client, csv_bytes("氏名,生年月日", "x,2017-01-01"), source="jidou_fuyou")
    assert "支給区分" in resp.get_data(as_text=True)


def test_review_decision_from_page(client, login, make, session, kids, post_form):
    service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, ",やまだ たろう,,2017-08-11,,支給中,2024-04-01"))
    item = session.scalar(select(ReviewItem))
    login(make.staff(Role.data_steward))
    session.commit()
    page = client.get(f"/staff/linkage/review/{item.id}").get_data(as_text=True)
    assert "山田 太郎" in page
    reads = session.scalars(select(AuditEvent).where(AuditEvent.action == "child.read")).all()
    assert [(e.child_id, e.detail["view"]) for e in reads] == [(kids["c"].id, "linkage.review")]
    resp = post_form(f"/staff/linkage/review/{item.id}", {"decision": "link", "child_id": kids["c"].id})
    assert resp.status_code == 302
    assert session.scalar(select(LinkedRecord)).method == "clerical"


def test_teacher_refused_counsellor_sees_and_read_is_audited(client, login, make, session, kids):
    service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01"))
    child = kids["a"]
    school_id = child.enrolments[0].school_class.school_id
    from portal.people.models import School

    school = session.get(School, school_id)
    teacher = make.staff(Role.teacher, schools=[school])
    counsellor = make.staff(Role.counsellor, schools=[school])
    outsider = make.staff(Role.counsellor, schools=[make.school()])
    session.commit()
    url = f"/staff/linkage/children/{child.id}"
    assert login(teacher).get(url).status_code == 403
    assert login(outsider).get(url).status_code == 404
    resp = login(counsellor).get(url)
    assert resp.status_code == 200 and "支給中" in resp.get_data(as_text=True)
    ev = session.scalar(select(AuditEvent).where(AuditEvent.action == "child.read", AuditEvent.child_id == child.id,
                                                 AuditEvent.actor_id == counsellor.id))
    assert ev is not None and ev.detail["view"] == "linkage.child_records"


# -- history, rollback, size, languages, query counts ---------------------------------

from contextlib import contextmanager  # noqa: E402

from sqlalchemy import event, func  # noqa: E402

from backoffice.linkage.models import ImportBatch  # noqa: E402


@contextmanager
def counting_queries(db):
    statements: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", before)


def _rows(n: int, start: int = 0) -> list[str]:
    return [f"A0001,高橋 花子,,2017-05-03,,支給中,2024-04-{d:02d}" for d in range(start + 1, start + n + 1)]


def test_history_shows_who_when_hash_and_counts(client, login, make, session, kids):
    steward = make.staff(Role.data_steward, name="記録 係")
    from portal.auth import service as auth

    service.import_file(session, auth.principal_for(steward), "jidou_teate", csv_bytes(H, *_rows(2)), "teate.csv")
    service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, *_rows(1, 5)), "cli.csv")
    session.commit()
    html = login(steward).get("/staff/linkage/").get_data(as_text=True)
    assert '<td class="batch-actor">記録 係</td>' in html
    assert "コマンド" in html or "command line" in html  # the batch from the command line
    b = session.scalars(select(ImportBatch).order_by(ImportBatch.id)).first()
    assert b.file_sha256[:12] in html
    page = client.get(f"/staff/linkage/batches/{b.id}").get_data(as_text=True)
    assert 'id="batch-actor">記録 係<' in page and 'id="rows-read">2<' in page


def test_history_and_review_queue_cost_a_constant_number_of_queries(client, login, make, session, kids, db):
    steward = make.staff(Role.data_steward)
    from portal.auth import service as auth

    me = auth.principal_for(steward)
    session.commit()
    login(steward)

    def cost(url):
        with counting_queries(db) as q:
            assert client.get(url).status_code == 200
        return len(q)

    service.import_file(session, me, "jidou_teate", csv_bytes(H, ",やまだ たろう,,2017-08-11,,支給中,2024-04-01"))
    session.commit()
    few = cost("/staff/linkage/"), cost("/staff/linkage/review")
    for i in range(4):
        service.import_file(session, me if i % 2 else SYSTEM, "jidou_teate",
                            csv_bytes(H, f",やまだ たろう,,2017-08-11,,支給中,2024-05-0{i + 1}"))
    session.commit()
    assert session.scalar(select(func.count(ReviewItem.id))) == 5
    many = cost("/staff/linkage/"), cost("/staff/linkage/review")
    assert many == few


def test_child_view_costs_a_constant_number_of_queries(client, login, make, session, kids, db):
    child = kids["a"]
    school = child.enrolments[0].school_class.school
    counsellor = make.staff(Role.counsellor, schools=[school])
    service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, *_rows(1)))
    session.commit()
    login(counsellor)
    url = f"/staff/linkage/children/{child.id}"
    session.expire_all()  # the tests' session is the requests' one: start both counts alike
    with counting_queries(db) as few:
        client.get(url)
    service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, *_rows(12, 1)))
    service.import_file(session, SYSTEM, "attendance", csv_bytes("児童生徒番号,氏名,対象年月,授業日数,欠席日数",
                                                                 "S0001,髙橋 花子,R7.5,20,1", "S0001,髙橋 花子,R7.6,20,2"))
    session.commit()
    session.expire_all()
    with counting_queries(db) as many:
        html = client.get(url).get_data(as_text=True)
    assert html.count("支給中") == 13 and "欠席日数" in html
    assert len(many) == len(few)


def test_child_view_in_english_names_the_columns_and_the_method(client, login, make, session, kids):
    child = kids["a"]
    counsellor = make.staff(Role.counsellor, schools=[child.enrolments[0].school_class.school], locale="en")
    service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, *_rows(1)))
    session.commit()
    c = login(counsellor)
    html = c.get(f"/staff/linkage/children/{child.id}", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Child allowance" in html and "Payment status" in html and "by resident number" in html


def test_child_view_without_consent_shows_nothing(client, login, make, session, kids):
    child = kids["a"]
    service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, *_rows(1)))
    from consent.testing import give_consent

    steward = make.staff(Role.data_steward)
    give_consent(session, child, "data_linkage", withdraw=True)
    session.commit()
    html = login(steward).get(f"/staff/linkage/children/{child.id}").get_data(as_text=True)
    assert "支給中" not in html


def test_rollback_from_the_report_page(client, login, make, session, kids, post_form):
    rep = service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, *_rows(3)))
    steward = make.staff(Role.data_steward)
    session.commit()
    login(steward)
    url = f"/staff/linkage/batches/{rep.batch_id}"
    resp = post_form(f"{url}/rollback", {}, page=url)
    assert resp.status_code == 302
    session.expire_all()
    assert session.scalar(select(func.count(LinkedRecord.id))) == 0
    assert session.get(ImportBatch, rep.batch_id).status == "rolled_back"
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "linkage.rollback",
                                                   AuditEvent.actor_id == steward.id))
    page = client.get(url).get_data(as_text=True)
    assert "取消済み" in page
    assert "/rollback" not in page  # cannot be rolled back twice
    assert client.post(f"{url}/rollback", data={}).status_code == 400  # no CSRF token


def test_upload_over_the_limit_is_refused_by_its_size_before_it_is_read(client, login, make, session, app,
                                                                          monkeypatch):
    login(make.staff(Role.data_steward))
    session.commit()
    # stands for the limit (kept under Werkzeug's 500 KB in-memory threshold:
    # larger test uploads leave the test client's temporary file open)
    monkeypatch.setitem(app.config, "LINKAGE_MAX_UPLOAD_BYTES", 100 * 1024)
    read = []
    real_read = service.read_table

    def spy(*a, **kw):
        read.append(1)
        return real_read(*a, **kw)

    monkeypatch.setattr(service, "read_table", spy)
    resp = _upload(client, b"x" * (100 * 1024 + 1))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "1 MB" in html
    assert read == []
