"""The administrator's staff pages: create, edit, deactivate, resets; all audited."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.admin import service
from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.auth.service import principal_for
from portal.people.models import Role, SchoolClass, Staff
from tests.conftest import PASSWORD


@pytest.fixture
def admin(make):
    return make.staff(Role.administrator)


def _actions(session):
    return [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_create_teacher_with_school_and_class(app, make, session, admin):
    school = make.school()
    cls = make.school_class(school, grade=1)
    staff, password = service.create_staff(
        session, principal_for(admin), name="新任 先生", email=" New.Teacher@Example.invalid ", role="teacher",
        school_ids=[school.id], class_ids=[cls.id],
    )
    assert staff.email == "new.teacher@example.invalid"
    assert staff.password_change_required and staff.totp_secret_enc is None
    assert [s.school_id for s in staff.scopes] == [school.id]
    assert session.get(SchoolClass, cls.id).homeroom_teacher_id == staff.id
    assert auth.staff_check_password(session, staff.email, password).reason == "totp_setup"
    ev = session.scalar(select(AuditEvent).where(AuditEvent.action == "admin.staff_created"))
    assert ev.detail == {"staff_id": staff.id, "role": "teacher", "school_ids": [school.id], "class_ids": [cls.id]}
    assert password not in str(ev.detail)


@pytest.mark.parametrize(("kw", "code"), [
    ({"role": "teacher", "school_ids": []}, "school_required"),
    ({"role": "school_lead", "school_ids": [999999]}, "unknown_school"),
])
def test_create_refuses_bad_scopes(app, make, session, admin, kw, code):
    with pytest.raises(service.StaffError) as e:
        service.create_staff(session, principal_for(admin), name="x", email="x@example.invalid", **kw)
    assert e.value.code == code


def test_municipality_roles_hold_no_school_scope(app, make, session, admin):
    school = make.school()
    staff, _ = service.create_staff(session, principal_for(admin), name="x", email="x@example.invalid",
                                    role="coordinator", school_ids=[school.id])
    assert staff.scopes == []


def test_homeroom_class_must_be_in_the_chosen_schools(app, make, session, admin):
    school, other = make.school(), make.school()
    cls = make.school_class(other)
    with pytest.raises(service.StaffError) as e:
        service.create_staff(session, principal_for(admin), name="x", email="x@example.invalid", role="teacher",
                             school_ids=[school.id], class_ids=[cls.id])
    assert e.value.code == "class_outside_schools"


def test_the_last_administrator_stays(app, make, session, admin):
    with pytest.raises(service.StaffError) as e:
        service.update_staff(session, principal_for(admin), admin, name="a", role="coordinator", locale="ja")
    assert e.value.code == "last_admin"
    with pytest.raises(service.StaffError) as e:
        service.set_active(session, principal_for(admin), admin, False)
    assert e.value.code == "self"
    # with a second administrator, the first may be deactivated by them
    other = make.staff(Role.administrator)
    service.set_active(session, principal_for(other), admin, False)
    assert not admin.active


def test_deactivate_signs_out_and_blocks_sign_in(app, make, session, admin, client, login):
    teacher = make.staff(Role.teacher, schools=[make.school()])
    session.commit()
    login(teacher)
    assert client.get("/staff/").status_code == 200
    service.set_active(session, principal_for(admin), teacher, False)
    session.commit()
    assert client.get("/staff/").status_code == 302  # the old session is gone
    assert auth.staff_check_password(session, teacher.email, PASSWORD).reason == "invalid"
    assert "admin.staff_deactivated" in _actions(session)


def test_reset_totp_makes_them_enrol_again(app, make, session, admin):
    teacher = make.staff(Role.teacher, schools=[make.school()])
    service.reset_totp(session, principal_for(admin), teacher)
    assert auth.staff_check_password(session, teacher.email, PASSWORD).reason == "totp_setup"
    assert "admin.totp_reset" in _actions(session)


# -- pages ------------------------------------------------------------------------


def test_admin_creates_a_teacher_and_sees_the_password_once(app, make, session, admin, login, client, post_form):
    school = make.school()
    session.commit()
    login(admin)
    resp = post_form("/staff/admin/staff/new", {
        "name": "新任 先生", "email": "new@example.invalid", "role": "teacher", "locale": "en", "schools": [str(school.id)],
    })
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    password = re.search(r'id="temporary-password"><strong>([a-z0-9-]+)<', html).group(1)
    staff = session.scalar(select(Staff).where(Staff.email == "new@example.invalid"))
    assert auth.staff_check_password(session, staff.email, password).ok
    # the edit page never shows it again
    assert password not in client.get(f"/staff/admin/staff/{staff.id}").get_data(as_text=True)


def test_admin_form_errors_are_shown(app, make, session, admin, login, post_form):
    make.staff(Role.teacher, email="taken@example.invalid", schools=[make.school()])
    session.commit()
    login(admin)
    html = post_form("/staff/admin/staff/new", {
        "name": "x", "email": "taken@example.invalid", "role": "teacher", "locale": "ja",
    }).get_data(as_text=True)
    assert 'class="error"' in html
    html = post_form("/staff/admin/staff/new", {
        "name": "x", "email": "fresh@example.invalid", "role": "teacher", "locale": "ja",
    }).get_data(as_text=True)
    assert 'class="error"' in html
    assert session.scalar(select(Staff).where(Staff.email == "fresh@example.invalid")) is None


def test_admin_edits_role_and_scopes(app, make, session, admin, login, post_form):
    s1, s2 = make.school(), make.school()
    staff = make.staff(Role.teacher, schools=[s1])
    session.commit()
    login(admin)
    resp = post_form(f"/staff/admin/staff/{staff.id}", {
        "name": "昇任 先生", "role": "school_lead", "locale": "ja", "schools": [str(s2.id)],
    })
    assert resp.status_code == 302
    session.expire_all()
    staff = session.get(Staff, staff.id)
    assert staff.role == Role.school_lead and [s.school_id for s in staff.scopes] == [s2.id]
    ev = session.scalar(select(AuditEvent).where(AuditEvent.action == "admin.staff_updated"))
    assert ev.detail["before"] == {"role": "teacher", "school_ids": [s1.id]}


def test_password_reset_page_then_forced_change(app, make, session, admin, login, client, post_form):
    teacher = make.staff(Role.teacher, schools=[make.school()])
    session.commit()
    login(admin)
    html = post_form(f"/staff/admin/staff/{teacher.id}/password", {}, page=f"/staff/admin/staff/{teacher.id}").get_data(as_text=True)
    temp = re.search(r'id="temporary-password"><strong>([a-z0-9-]+)<', html).group(1)
    session.expire_all()
    teacher = session.get(Staff, teacher.id)
    assert "admin.password_reset" in _actions(session)
    # the teacher signs in: every page leads to "choose your own password"
    c = app.test_client()
    login(teacher, c)
    r = c.get("/staff/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/staff/account/password")
    from flask import g
    g.pop("csrf_token", None)
    bad = post_form("/staff/account/password", {"current": "wrong", "password": "a brand new pass", "password_again": "a brand new pass"}, c=c)
    assert bad.status_code == 200 and 'class="error"' in bad.get_data(as_text=True)
    ok = post_form("/staff/account/password", {"current": temp, "password": "a brand new pass", "password_again": "a brand new pass"}, c=c)
    assert ok.status_code == 302
    assert c.get("/staff/").status_code == 200
    assert auth.staff_check_password(session, teacher.email, "a brand new pass").ok


def test_action_buttons_need_csrf(app, make, session, admin, login, client):
    teacher = make.staff(Role.teacher, schools=[make.school()])
    session.commit()
    login(admin)
    assert client.post(f"/staff/admin/staff/{teacher.id}/active", data={"active": "0"}).status_code == 400
    session.expire_all()
    assert session.get(Staff, teacher.id).active


def test_staff_list_searches_and_shows_no_child(app, make, session, admin, login, client):
    make.staff(Role.counsellor, name="相談 員", email="counsel@example.invalid", schools=[make.school()])
    make.child(name="児童 秘密")
    session.commit()
    login(admin)
    html = client.get("/staff/admin/staff?q=counsel").get_data(as_text=True)
    assert "相談 員" in html and admin.email not in html
    assert "児童 秘密" not in html
    assert "相談 員" not in client.get("/staff/admin/staff?role=teacher").get_data(as_text=True)
