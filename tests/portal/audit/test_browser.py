"""In a browser, in Japanese and English: the data steward searches the audit log and checks the chain."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from portal.audit import service as audit
from portal.auth.service import principal_for
from portal.people.models import Role
from tests.conftest import browser_sign_in_staff

pytestmark = pytest.mark.browser

TEXT = {
    "ja": {"log": "監査ログ", "search": "検索", "one": "1 件", "check": "チェーンを検証", "intact": "監査ログのチェーンは正常です"},
    "en": {"log": "Audit log", "search": "Search", "one": "1 entry", "check": "Check the chain",
           "intact": "The audit chain is intact"},
}


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_steward_searches_the_log_by_child_and_checks_the_chain(browser_page, make, session, locale):
    teacher, cls = make.teacher_with_class(grade=4)
    looked_at, other = make.child(cls, name="監査 一郎"), make.child(cls)
    audit.record_child_read(session, principal_for(teacher), looked_at.id, "kernel.child_record", purpose="support")
    audit.record_child_read(session, principal_for(teacher), other.id, "kernel.child_record", purpose="support")
    steward = make.staff(Role.data_steward, locale=locale)
    session.commit()
    t = TEXT[locale]

    page = browser_page
    browser_sign_in_staff(page, steward.email)
    page.get_by_role("link", name=t["log"]).first.click()
    expect(page.get_by_role("heading", name=t["log"])).to_be_visible()

    page.fill("#child_id", str(looked_at.id))
    page.select_option("#role", "teacher")
    page.get_by_role("button", name=t["search"], exact=True).click()
    expect(page.locator("main")).to_contain_text(t["one"])
    rows = page.locator(".audit-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("child.read")
    expect(rows.first).to_contain_text(str(looked_at.id))
    assert "監査 一郎" not in page.content()  # the log holds ids, never names

    page.get_by_role("button", name=t["check"]).click()
    expect(page.locator(".flash-success")).to_contain_text(t["intact"])
    assert page.locator("html").get_attribute("lang") == locale
