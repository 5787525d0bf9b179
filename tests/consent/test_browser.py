"""Consent in a real browser, in Japanese and English: guardians, a junior-high
student, the data steward, a coordinator and the public pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask_babel import force_locale, gettext
from playwright.sync_api import expect

from consent import rights
from consent.gate import is_consented
from consent.models import DataRequest, RequestStatus
from consent.testing import ensure_purposes, give_consent
from portal.audit.service import record_child_read
from portal.auth.principal import Principal
from tests.conftest import (
    browser_set_language,
    browser_sign_in_guardian,
    browser_sign_in_staff,
    browser_sign_in_student,
)

pytestmark = pytest.mark.browser
LOCALES = ["ja", "en"]


@pytest.fixture
def t(app):
    """The page's words in a locale, from the catalogue (Japanese must be translated)."""

    def _t(locale: str, msgid: str, **kw) -> str:
        with app.test_request_context(), force_locale(locale):
            text = gettext(msgid, **kw)
        if locale == "ja":
            assert text != msgid % kw if kw else text != msgid, f"untranslated: {msgid}"
        return text

    return _t


@pytest.mark.parametrize("locale", LOCALES)
def test_guardian_grants_withdraws_and_downloads_a_receipt(browser_page, session, make, locale, t):
    child = make.child(grade=4, name="見守 一花")
    g = make.guardian(child, email=f"consent-{locale}@example.invalid", locale=locale)
    ensure_purposes(session)
    session.commit()
    page = browser_page
    browser_sign_in_guardian(page, g.email)
    page.goto("/family/consent/")
    page.locator(f'a[href="/family/consent/children/{child.id}/data_linkage"]').click()
    page.get_by_label(t(locale, "I have read the text above and I consent for my child.")).check()
    page.get_by_role("button", name=t(locale, "I consent")).click()
    expect(page.locator(".badge", has_text=t(locale, "In effect"))).to_be_visible()
    assert is_consented(session, child.id, "data_linkage")

    # Withdrawing: the same page, the same one confirmation and one button.
    page.get_by_label(t(locale, "I withdraw my consent for my child. It takes effect at once.")).check()
    page.get_by_role("button", name=t(locale, "Withdraw my consent")).click()
    expect(page.locator(".badge", has_text=t(locale, "Withdrawn"))).to_be_visible()
    expect(page.locator(".flash")).to_contain_text(t(locale, "Your withdrawal is recorded and takes effect now."))
    session.expire_all()
    assert not is_consented(session, child.id, "data_linkage")

    page.goto("/family/consent/")
    page.get_by_role("link", name=t(locale, "History and receipts")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(t(locale, "History and receipts"))
    expect(page.locator("tbody tr")).to_have_count(2)
    with page.expect_download() as dl:
        page.locator("a", has_text="PDF").first.click()
    assert Path(dl.value.path()).read_bytes()[:4] == b"%PDF"
    with page.expect_download() as dl:
        page.locator("a", has_text="JSON").first.click()
    receipt = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    assert receipt["event"][0]["event_state"] == "withdrawn" and receipt["pii_processing"]["language"] == locale


@pytest.mark.parametrize("locale", LOCALES)
def test_junior_high_student_grants_their_part(browser_page, session, make, locale, t):
    child = make.child(grade=8, name="見守 二葉", pin="482913", locale=locale)
    make.guardian(child)
    ensure_purposes(session)
    session.commit()
    page = browser_page
    browser_sign_in_student(page, child.student_no, "482913")
    page.goto("/student/consent/")
    expect(page.locator("main")).to_contain_text(t(locale, "You have not decided yet"))
    page.locator('a[href="/student/consent/data_linkage"]').click()
    page.get_by_label(t(locale, "I read this and I agree.")).check()
    page.get_by_role("button", name=t(locale, "Yes, I agree")).click()
    expect(page.locator(".kid-panel").first).to_contain_text(t(locale, "You said yes."))
    # The family has not consented to this purpose: the child's yes alone does not open the gate.
    expect(page.locator(".kid-panel").first).to_contain_text(t(locale, "It starts only when your family says yes too."))
    session.expire_all()
    assert not is_consented(session, child.id, "data_linkage")
    page.get_by_role("link", name=t(locale, "Everything I decided")).click()
    with page.expect_download() as dl:
        page.get_by_role("link", name=t(locale, "Receipt (PDF)")).first.click()
    assert Path(dl.value.path()).read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("locale", LOCALES)
def test_steward_answers_a_disclosure_request_and_the_download_has_the_access_log(new_page, session, make, locale, t):
    child = make.child(grade=4, name="見守 三太")
    g = make.guardian(child, locale=locale)
    steward = make.staff("data_steward", email=f"steward-{locale}@example.invalid", name="管理 守", locale=locale)
    teacher = make.staff("teacher", name="担任 先生")
    give_consent(session, child, "data_linkage")
    record_child_read(session, Principal(kind="staff", id=teacher.id, role="teacher"), child.id, "flags")
    req = rights.create_request(session, Principal(kind="guardian", id=g.id, role="guardian"), child.id, "disclosure")
    session.commit()
    page = new_page()
    browser_sign_in_staff(page, steward.email)
    page.goto("/staff/consent/requests")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody .badge").first).to_contain_text(t(locale, "%(n)d days left", n=30))
    page.locator(f'a[href="/staff/consent/requests/{req.id}"]').click()
    page.get_by_label(t(locale, "Done as asked")).check()
    page.get_by_label(t(locale, "Answer to the family")).fill("開示の資料をご家庭のページからダウンロードできます。")
    page.get_by_role("button", name=t(locale, "Record the answer")).click()
    expect(page.locator(".badge", has_text=t(locale, "Done"))).to_be_visible()
    with page.expect_download() as dl:
        page.get_by_role("link", name=t(locale, "Download the disclosure (JSON)")).click()
    data = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    roles = {r["role"] for r in data["access_log"]}
    assert {"teacher", "data_steward"} <= roles
    assert "担任 先生" not in json.dumps(data, ensure_ascii=False) and "管理 守" not in json.dumps(data, ensure_ascii=False)
    assert data["consent_history"][0]["purpose"] == "data_linkage"
    with page.expect_download() as dl:
        page.get_by_role("link", name=t(locale, "Download the disclosure (PDF)")).click()
    assert Path(dl.value.path()).read_bytes()[:4] == b"%PDF"
    session.expire_all()
    assert session.get(DataRequest, req.id).status == RequestStatus.completed


@pytest.mark.parametrize("locale", LOCALES)
def test_guardian_asks_for_disclosure_and_sees_which_roles_looked(browser_page, session, make, locale, t):
    child = make.child(grade=4, name="見守 四郎")
    g = make.guardian(child, email=f"rights-{locale}@example.invalid", locale=locale)
    counsellor = make.staff("counsellor", name="相談 員")
    ensure_purposes(session)
    record_child_read(session, Principal(kind="staff", id=counsellor.id, role="counsellor"), child.id, "case")
    session.commit()
    page = browser_page
    browser_sign_in_guardian(page, g.email)
    page.goto("/family/requests")
    page.get_by_label(t(locale, "Disclosure: see everything held about my child (開示)")).check()
    page.get_by_role("button", name=t(locale, "Send the request")).click()
    expect(page.locator(".flash")).to_contain_text(t(locale, "Your request is received. The city answers within 30 days."))
    expect(page.locator("tbody tr")).to_have_count(1)
    page.goto("/family/consent/")
    page.get_by_role("link", name=t(locale, "Who looked at the record")).click()
    expect(page.locator("tbody")).to_contain_text(t(locale, "School counsellor"))
    expect(page.locator("main")).not_to_contain_text("相談 員")


@pytest.mark.parametrize("locale", LOCALES)
def test_steward_enters_a_paper_form_and_imports_a_file(new_page, session, make, locale, t, tmp_path):
    a = make.child(grade=4, student_no="P0001")
    b = make.child(grade=4, student_no="P0002")
    steward = make.staff("data_steward", email=f"paper-{locale}@example.invalid", locale=locale)
    ensure_purposes(session)
    session.commit()
    page = new_page()
    browser_sign_in_staff(page, steward.email)
    page.goto("/staff/consent/paper")
    page.get_by_label(t(locale, "Student number (児童生徒番号)")).fill("P0001")
    page.get_by_label(t(locale, "Date signed")).fill("2025-04-01")
    page.get_by_label(t(locale, "Form number (書面番号)")).fill("F-100")
    page.get_by_role("button", name=t(locale, "Record the form")).click()
    expect(page.locator(".flash")).to_contain_text(t(locale, "The paper form is recorded."))
    session.expire_all()
    assert is_consented(session, a.id, "data_linkage")

    f = tmp_path / "paper.csv"
    f.write_text("児童生徒番号,同意者区分,同意者氏名,目的コード,同意区分,日付,書面番号\n"
                 "P0002,保護者,,wellbeing_survey,同意,R7.4.2,F-101\n"
                 "NOPE,保護者,,wellbeing_survey,同意,R7.4.2,F-102\n", encoding="utf-8")
    page.get_by_label(t(locale, "File (CSV or XLSX)")).set_input_files(str(f))
    page.get_by_role("button", name=t(locale, "Import")).click()
    report = page.locator("section[aria-labelledby=report-h]")
    expect(report).to_contain_text(t(locale, "No child has the student number %(no)s.", no="NOPE"))
    expect(report.locator("tbody tr")).to_have_count(1)
    session.expire_all()
    assert is_consented(session, b.id, "wellbeing_survey")


@pytest.mark.parametrize("locale", LOCALES)
def test_steward_defines_a_purpose_and_publishes_its_text(new_page, session, make, locale, t):
    steward = make.staff("data_steward", email=f"purpose-{locale}@example.invalid", locale=locale)
    ensure_purposes(session)
    session.commit()
    page = new_page()
    browser_sign_in_staff(page, steward.email)
    page.goto("/staff/consent/")
    page.get_by_role("link", name=t(locale, "New consent purpose")).click()
    page.get_by_label(t(locale, "Code")).fill(f"school_photos_{locale}")
    page.get_by_label(t(locale, "Title (Japanese)")).fill("学校だよりへの写真掲載")
    page.get_by_label(t(locale, "Plain-language explanation (Japanese)")).fill("行事の写真を学校だよりに載せます。")
    page.get_by_label(t(locale, "Data items (Japanese, one per line)")).fill("写真\n学年")
    page.get_by_role("button", name=t(locale, "Save")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(t(locale, "Publish a new version"))
    page.get_by_label(t(locale, "Title (Japanese)")).fill("写真掲載についての同意")
    page.get_by_label(t(locale, "Text for guardians (Japanese)")).fill("行事の写真を学校だよりに載せることに同意します。")
    page.get_by_label(t(locale, "I have checked the text: a published version cannot be changed")).check()
    page.get_by_role("button", name=t(locale, "Publish")).click()
    expect(page.locator(".flash")).to_contain_text(t(locale, "Version %(v)d is published.", v=1))
    expect(page.locator("tbody")).to_contain_text(f"school_photos_{locale}")


@pytest.mark.parametrize("locale", LOCALES)
def test_coordinator_sees_coverage_and_anyone_reads_the_public_pages(new_page, browser_page, session, make, locale, t):
    klass = make.school_class(grade=5)
    kids = [make.child(klass) for _ in range(4)]
    for k in kids:
        make.guardian(k)
    give_consent(session, kids[0], "data_linkage")
    coordinator = make.staff("coordinator", email=f"coverage-{locale}@example.invalid", locale=locale)
    ensure_purposes(session)
    session.commit()
    page = new_page()
    browser_sign_in_staff(page, coordinator.email)
    page.goto("/staff/consent/coverage")
    expect(page.get_by_role("heading", level=1)).to_contain_text(t(locale, "Consent coverage"))
    expect(page.locator("tbody tr").first).to_contain_text("25%")

    public = browser_page
    public.goto("/consent/purposes")
    if locale == "en":
        browser_set_language(public, "en")
    expect(public.get_by_role("heading", level=1)).to_contain_text(t(locale, "How the city uses data (purposes)"))
    expect(public.locator("#data_linkage")).to_contain_text(
        "行政データの連携" if locale == "ja" else "Linking administrative records")
    public.get_by_role("link", name=t(locale, "Personal-information file register")).click()
    expect(public.get_by_role("heading", level=1)).to_contain_text(t(locale, "Personal-information file register"))
    expect(public.locator("tbody")).to_contain_text("給食費の滞納月数" if locale == "ja" else "Months of unpaid school-lunch fees")
