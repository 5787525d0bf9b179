"""The class pages: who may print what, the confirm step, the PDFs."""

from __future__ import annotations

from flask import g
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.people.models import Child
from tests.portal.people.conftest import pdf_pages, pins_by_student_no


def test_teacher_sees_only_own_classes(app, make, session, login, client, school_setup):
    make.child(school_setup["class_a"])
    session.commit()
    login(school_setup["teacher_a"])
    html = client.get("/staff/classes/").get_data(as_text=True)
    assert f"/staff/classes/{school_setup['class_a'].id}/cards" in html
    assert f"/staff/classes/{school_setup['class_b'].id}/cards" not in html
    assert f"/staff/classes/{school_setup['class_a'].id}/letters" not in html  # letters are the school lead's


def test_lead_sees_every_class_of_own_school_only(app, make, session, login, client, school_setup):
    session.commit()
    login(school_setup["lead"])
    html = client.get("/staff/classes/").get_data(as_text=True)
    for key in ("class_a", "class_b"):
        assert f"/staff/classes/{school_setup[key].id}/letters" in html
    assert f"/staff/classes/{school_setup['other_class'].id}/" not in html


def test_another_teachers_class_is_refused(app, make, session, login, client, post_form, school_setup):
    kid = make.child(school_setup["class_b"], pin="111111")
    session.commit()
    login(school_setup["teacher_a"])
    url = f"/staff/classes/{school_setup['class_b'].id}/cards"
    assert client.get(url).status_code == 404
    resp = post_form(url, {"confirm": "y"}, page="/staff/classes/")
    assert resp.status_code == 404
    assert auth.student_check_pin(session, kid.student_no, "111111").ok  # nothing changed


def test_another_schools_class_is_refused_for_a_lead(app, make, session, login, client, post_form, school_setup):
    make.child(school_setup["other_class"])
    session.commit()
    login(school_setup["lead"])
    for what in ("cards", "letters"):
        url = f"/staff/classes/{school_setup['other_class'].id}/{what}"
        assert client.get(url).status_code == 404
        assert post_form(url, {"confirm": "y"}, page="/staff/classes/").status_code == 404
    assert session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action.like("people.%"))) == 0


def test_teacher_may_not_print_letters(app, make, session, login, client, school_setup):
    session.commit()
    login(school_setup["teacher_a"])
    assert client.get(f"/staff/classes/{school_setup['class_a'].id}/letters").status_code == 403


def test_cards_need_the_confirmation_and_say_so(app, make, session, login, client, post_form, school_setup):
    kid = make.child(school_setup["class_a"], pin="111111")
    session.commit()
    login(school_setup["teacher_a"])
    url = f"/staff/classes/{school_setup['class_a'].id}/cards"
    resp = post_form(url, {})
    assert resp.status_code == 200
    assert "Tick the box" in resp.get_data(as_text=True) or "チェック" in resp.get_data(as_text=True)
    assert auth.student_check_pin(session, kid.student_no, "111111").ok


def test_cards_without_csrf_token_change_nothing(app, make, session, login, client, school_setup):
    kid = make.child(school_setup["class_a"], pin="111111")
    session.commit()
    login(school_setup["teacher_a"])
    resp = client.post(f"/staff/classes/{school_setup['class_a'].id}/cards", data={"confirm": "y"})
    assert resp.status_code == 400
    assert auth.student_check_pin(session, kid.student_no, "111111").ok


def test_teacher_downloads_the_card_sheet_and_a_pin_from_it_works(app, make, session, login, client, post_form, school_setup):
    kids = [make.child(school_setup["class_a"]) for _ in range(9)]
    session.commit()
    login(school_setup["teacher_a"])
    resp = post_form(f"/staff/classes/{school_setup['class_a'].id}/cards", {"confirm": "y"})
    assert resp.status_code == 200
    assert resp.mimetype == "application/pdf"
    assert "attachment" in resp.headers["Content-Disposition"]
    pdf = resp.get_data()
    assert len(pdf_pages(pdf)) == 2
    pins = pins_by_student_no(pdf, [k.student_no for k in kids])
    assert len(pins) == 9
    session.expire_all()
    assert auth.student_check_pin(session, kids[4].student_no, pins[kids[4].student_no]).ok
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "people.cards_issued")).detail["cards"] == 9


def test_lead_downloads_letters_and_the_code_registers(app, make, session, login, client, post_form, school_setup):
    import re

    kid = make.child(school_setup["class_a"], name="見守 一花")
    session.commit()
    login(school_setup["lead"])
    page = client.get(f"/staff/classes/{school_setup['class_a'].id}/letters").get_data(as_text=True)
    assert "60" in page  # validity in days
    resp = post_form(f"/staff/classes/{school_setup['class_a'].id}/letters", {"confirm": "y"})
    assert resp.mimetype == "application/pdf"
    (text,) = pdf_pages(resp.get_data())
    code = re.search(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", text).group(0)
    assert "見守 一花" in text
    family = app.test_client()
    g.pop("csrf_token", None)  # the tests share one app context, so g outlives a request
    r = post_form("/family/register", {
        "code": code, "name": "見守 花子", "relationship": "mother", "email": "hanako@example.invalid",
        "password": "correct horse battery", "password_again": "correct horse battery",
    }, c=family)
    assert r.status_code == 302 and r.headers["Location"].endswith("/family/register/sent"), r.get_data(as_text=True)[-3000:]
    assert kid.id in [c.id for c in session.scalars(select(Child).where(Child.id == kid.id))]
