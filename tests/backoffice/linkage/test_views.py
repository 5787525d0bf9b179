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
