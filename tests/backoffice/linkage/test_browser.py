"""The issue's main paths in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from backoffice.linkage.models import LinkedRecord, ReviewItem
from portal.audit.models import AuditEvent
from portal.people.models import Role, School
from tests.conftest import browser_set_language, browser_sign_in_staff

from .conftest import csv_bytes

pytestmark = pytest.mark.browser

H = "宛名番号,氏名,氏名カナ,生年月日,受給者宛名番号,支給状況,認定日"


def test_steward_uploads_cp932_sees_report_and_resolves_review(browser_page, make, session, kids, tmp_path):
    steward = make.staff(Role.data_steward)
    session.commit()
    f = tmp_path / "teate.csv"
    f.write_bytes(csv_bytes(H, "A0001,髙橋 花子,ﾀｶﾊｼ ﾊﾅｺ,H29.5.3,,支給中,R6.4.1",
                            ",やまだ たろう,,2017-08-11,,支給中,2024-04-01", encoding="cp932"))
    page = browser_page
    browser_sign_in_staff(page, steward.email)
    browser_set_language(page, "en")
    page.goto("/staff/linkage/")
    page.select_option("#source", "jidou_teate")
    page.set_input_files("#file", str(f))
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("body")).to_contain_text("cp932")
    expect(page.locator("body")).to_contain_text("髙橋 花子")
    page.get_by_role("button", name="Import and link").click()
    page.wait_for_url("**/staff/linkage/batches/**")
    assert page.locator("#linked").inner_text().startswith("1")
    assert page.locator("#review").inner_text() == "1"
    page.get_by_role("link", name="Go to the review queue").click()
    page.locator("table a").first.click()
    expect(page.locator("body")).to_contain_text("山田 太郎")
    page.get_by_role("button", name="Link to candidate 1").click()
    page.wait_for_url("**/staff/linkage/review")
    expect(page.locator("body")).to_contain_text("Nothing to review.")
    session.expire_all()
    assert session.scalar(select(ReviewItem)) is None
    assert {r.method for r in session.scalars(select(LinkedRecord))} == {"atena_no", "clerical"}


def test_teacher_refused_counsellor_sees_and_audit_shows_read(browser_page, new_page, make, session, kids):
    from backoffice.linkage.importer import service
    from portal.auth.principal import SYSTEM

    service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01"))
    child = kids["a"]
    school = session.get(School, child.enrolments[0].school_class.school_id)
    teacher = make.staff(Role.teacher, schools=[school])
    counsellor = make.staff(Role.counsellor, schools=[school])
    session.commit()
    url = f"/staff/linkage/children/{child.id}"

    page = browser_page
    browser_sign_in_staff(page, teacher.email)
    resp = page.goto(url)
    assert resp.status == 403 and "支給中" not in page.content()

    other = new_page()
    browser_sign_in_staff(other, counsellor.email)
    resp = other.goto(url)
    assert resp.status == 200 and "支給中" in other.content()
    session.expire_all()
    assert session.scalar(select(AuditEvent).where(
        AuditEvent.action == "child.read", AuditEvent.child_id == child.id, AuditEvent.actor_id == counsellor.id))
