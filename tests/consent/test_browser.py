"""Consent in a real browser: a guardian (ja and en), a junior-high student, the steward."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from consent import rights
from consent.gate import is_consented
from consent.testing import ensure_purposes, give_consent
from portal.audit.service import record_child_read
from portal.auth.principal import Principal
from tests.conftest import browser_sign_in_guardian, browser_sign_in_staff, browser_sign_in_student

pytestmark = pytest.mark.browser

TEXT = {
    "ja": {"confirm_grant": "上の文章を読み、子どもについて同意します。", "grant": "同意する",
           "confirm_withdraw": "子どもについての同意を撤回します。すぐに効力を持ちます。", "withdraw": "同意を撤回する",
           "in_effect": "有効", "withdrawn": "撤回済み", "history": "履歴と控え"},
    "en": {"confirm_grant": "I have read the text above and I consent for my child.", "grant": "I consent",
           "confirm_withdraw": "I withdraw my consent for my child. It takes effect at once.",
           "withdraw": "Withdraw my consent", "in_effect": "In effect", "withdrawn": "Withdrawn",
           "history": "History and receipts"},
}


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_guardian_grants_withdraws_and_downloads_a_receipt(browser_page, session, make, locale):
    child = make.child(grade=4, name="見守 一花")
    g = make.guardian(child, email=f"consent-{locale}@example.invalid", locale=locale)
    ensure_purposes(session)
    session.commit()
    t = TEXT[locale]
    page = browser_page
    browser_sign_in_guardian(page, g.email)
    page.goto("/family/consent/")
    page.locator(f'a[href="/family/consent/children/{child.id}/data_linkage"]').click()
    page.get_by_label(t["confirm_grant"]).check()
    page.get_by_role("button", name=t["grant"]).click()
    assert page.locator(".badge", has_text=t["in_effect"]).is_visible()
    assert is_consented(session, child.id, "data_linkage")

    # Withdrawing: the same page, the same one confirmation and one button.
    page.get_by_label(t["confirm_withdraw"]).check()
    page.get_by_role("button", name=t["withdraw"]).click()
    assert page.locator(".badge", has_text=t["withdrawn"]).is_visible()
    session.expire_all()
    assert not is_consented(session, child.id, "data_linkage")

    page.goto(f"/family/consent/children/{child.id}/history")
    assert page.get_by_role("heading", name=t["history"]).count() == 1 or t["history"] in page.content()
    with page.expect_download() as dl:
        page.locator("a", has_text="PDF").first.click()
    assert Path(dl.value.path()).read_bytes()[:4] == b"%PDF"


def test_junior_high_student_grants_their_part(browser_page, session, make):
    child = make.child(grade=8, name="見守 二葉", pin="482913")
    make.guardian(child)
    give_consent(session, child, "wellbeing_survey")  # family and child both say yes for this one
    ensure_purposes(session)
    session.commit()
    page = browser_page
    browser_sign_in_student(page, child.student_no, "482913")
    page.goto("/student/consent/")
    page.locator('a[href="/student/consent/data_linkage"]').click()
    page.get_by_label("読んで、さんせいします。").check()
    page.get_by_role("button", name="はい、さんせいします").click()
    expect(page.locator("body")).to_contain_text("あなたは「はい」と答えました。")
    session.expire_all()
    # The guardian has not consented to this purpose: the child's yes alone does not open the gate.
    assert not is_consented(session, child.id, "data_linkage")


def test_steward_answers_a_disclosure_request_and_the_download_has_the_access_log(new_page, session, make):
    child = make.child(grade=4, name="見守 三太")
    g = make.guardian(child)
    steward = make.staff("data_steward", email="steward-b@example.invalid", name="管理 守", locale="en")
    teacher = make.staff("teacher", name="担任 先生")
    give_consent(session, child, "data_linkage")
    record_child_read(session, Principal(kind="staff", id=teacher.id, role="teacher"), child.id, "flags")
    req = rights.create_request(session, Principal(kind="guardian", id=g.id, role="guardian"), child.id, "disclosure")
    session.commit()
    page = new_page()
    browser_sign_in_staff(page, steward.email)
    page.goto("/staff/consent/requests")
    page.locator(f'a[href="/staff/consent/requests/{req.id}"]').click()
    page.get_by_label("Done as asked").check()
    page.get_by_label("Answer to the family").fill("The disclosure is ready to download on your page.")
    page.get_by_role("button", name="Record the answer").click()
    assert page.locator(".badge", has_text="Done").is_visible()
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download the disclosure (JSON)").click()
    data = json.loads(Path(dl.value.path()).read_text(encoding="utf-8"))
    roles = {r["role"] for r in data["access_log"]}
    assert {"teacher", "data_steward"} <= roles
    assert "担任 先生" not in json.dumps(data, ensure_ascii=False)
