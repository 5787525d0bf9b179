"""Each role's home page renders and offers that role's pages, and only those."""

from __future__ import annotations

import pytest

from portal.auth.access import STAFF_ROLES
from portal.people.models import Role

LINKS = {
    "/staff/classes/": {"teacher", "school_lead"},
    "/staff/admin/staff": {"administrator"},
    "/staff/audit/": {"data_steward"},
}


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_staff_home_shows_the_roles_entries(app, make, session, login, client, role):
    staff = make.staff(Role(role), schools=[make.school()])
    session.commit()
    login(staff)
    resp = client.get("/staff/")
    assert resp.status_code == 200
    main = resp.get_data(as_text=True).split('<main', 1)[1]
    assert staff.name in main
    for href, roles in LINKS.items():
        assert (f'href="{href}"' in main) == (role in roles), href
    assert 'href="/staff/account/password"' in main


def test_guardian_and_student_homes_render(app, make, session, login, client):
    child = make.child(name="見守 小太郎")
    guardian = make.guardian(child)
    session.commit()
    login(guardian)
    assert "見守 小太郎" in client.get("/family/").get_data(as_text=True)
    c = app.test_client()
    login(child, c)
    html = c.get("/student/").get_data(as_text=True)
    assert "小太郎" in html
