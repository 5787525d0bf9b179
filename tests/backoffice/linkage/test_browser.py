"""The issue's main paths in a real browser, in Japanese and in English."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from backoffice.linkage.models import LinkedRecord, ReviewItem
from portal.people.models import Role, School
from tests.conftest import browser_set_language, browser_sign_in_staff

from .conftest import csv_bytes

pytestmark = pytest.mark.browser

H = "宛名番号,氏名,氏名カナ,生年月日,受給者宛名番号,支給状況,認定日"

TEXT = {
    "ja": {"report": "取り込み結果", "nothing": "確認待ちはありません。", "records": "さんの名寄せされた記録",
           "source": "児童手当"},
    "en": {"report": "Import report", "nothing": "Nothing to review.", "records": "Linked records of",
           "source": "Child allowance"},
}


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_steward_uploads_cp932_sees_report_and_resolves_review(browser_page, make, session, kids, tmp_path, locale):
    steward = make.staff(Role.data_steward)
    session.commit()
    f = tmp_path / "teate.csv"
    f.write_bytes(csv_bytes(H, "A0001,髙橋 花子,ﾀｶﾊｼ ﾊﾅｺ,H29.5.3,,支給中,R6.4.1",
                            ",やまだ たろう,,2017-08-11,,支給中,2024-04-01",
                            "A0004,渡辺 健,,2016-02-30,,支給中,2024-04-01", encoding="cp932"))
    page = browser_page
    browser_sign_in_staff(page, steward.email)
    if locale != "ja":
        browser_set_language(page, locale)
    page.goto("/staff/linkage/")
    page.select_option("#source", "jidou_teate")
    page.set_input_files("#file", str(f))
    page.locator("#check-file").click()
    # the preview: encoding, the first rows, the bad row named by line and column
    expect(page.locator("main")).to_contain_text("cp932")
    expect(page.locator("main")).to_contain_text("髙橋 花子")
    expect(page.locator("#preview-errors")).to_contain_text("生年月日")
    assert page.locator("#preview-errors tbody td").first.inner_text() == "4"
    page.locator("#confirm-import").click()
    # the progress page polls, then opens the report
    page.wait_for_url("**/staff/linkage/batches/**")
    expect(page.locator("h1")).to_contain_text(TEXT[locale]["report"])
    assert page.locator("#linked").inner_text().startswith("1")
    assert page.locator("#review").inner_text() == "1"
    page.locator("#to-review").click()
    page.locator("main table a").first.click()
    expect(page.locator("main")).to_contain_text("山田 太郎")
    page.locator("#link-candidate-1").click()
    page.wait_for_url("**/staff/linkage/review")
    expect(page.locator("main")).to_contain_text(TEXT[locale]["nothing"])
    session.expire_all()
    assert session.scalar(select(ReviewItem)) is None
    assert {r.method for r in session.scalars(select(LinkedRecord))} == {"atena_no", "clerical"}


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_teacher_refused_counsellor_sees_and_audit_log_shows_the_read(browser_page, new_page, make, session, kids,
                                                                     locale):
    from backoffice.linkage.importer import service
    from portal.auth.principal import SYSTEM

    service.import_file(session, SYSTEM, "jidou_teate", csv_bytes(H, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01"))
    child = kids["a"]
    school = session.get(School, child.enrolments[0].school_class.school_id)
    teacher = make.staff(Role.teacher, schools=[school])
    counsellor = make.staff(Role.counsellor, schools=[school])
    steward = make.staff(Role.data_steward)
    session.commit()
    url = f"/staff/linkage/children/{child.id}"

    page = browser_page
    browser_sign_in_staff(page, teacher.email)
    resp = page.goto(url)
    assert resp.status == 403 and "支給中" not in page.content()

    other = new_page()
    browser_sign_in_staff(other, counsellor.email)
    if locale != "ja":
        browser_set_language(other, locale)
    resp = other.goto(url)
    assert resp.status == 200
    expect(other.locator("h1")).to_contain_text(TEXT[locale]["records"])
    expect(other.locator("main")).to_contain_text(TEXT[locale]["source"])
    expect(other.locator("main")).to_contain_text("支給中")

    audit = new_page()
    browser_sign_in_staff(audit, steward.email)
    if locale != "ja":
        browser_set_language(audit, locale)
    audit.goto(f"/staff/audit/?child_id={child.id}&action=child.read")
    row = audit.locator("table.audit-table tbody tr", has_text="linkage.child_records")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"staff {counsellor.id}")
    expect(row).to_contain_text("child.read")
