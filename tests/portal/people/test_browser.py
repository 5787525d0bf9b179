"""In a browser, in Japanese and English: a school lead prints a class's card
sheet, and a child signs in with the PIN printed on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.people.models import Role
from tests.conftest import browser_sign_in_staff, browser_sign_in_student
from tests.portal.people.conftest import pins_by_student_no

pytestmark = pytest.mark.browser


TEXT = {
    "ja": {"classes": "担当のクラス", "cards": "サインインカード", "hello": "こんにちは"},
    "en": {"classes": "My classes", "cards": "Sign-in cards", "hello": "Hello"},
}


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_lead_prints_cards_and_a_child_signs_in_with_the_pin(browser_page, new_page, make, session, locale):
    school = make.school(name="みまもり市立ひだまり小学校", name_en="Hidamari Elementary")
    cls = make.school_class(school, grade=1, name="2")
    kids = [make.child(cls, name=f"見守 一花{i}", locale=locale) for i in range(3)]
    lead = make.staff(Role.school_lead, schools=[school], locale=locale)
    session.commit()
    t = TEXT[locale]

    page = browser_page
    browser_sign_in_staff(page, lead.email)
    page.get_by_role("link", name=t["classes"]).first.click()
    page.locator(f'main a[href="/staff/classes/{cls.id}/cards"]').click()
    assert page.locator("html").get_attribute("lang") == locale
    assert t["cards"] in page.locator("h1").inner_text()
    # without the confirmation: a clear message, nothing issued
    page.locator("main form button[type=submit]").click()
    assert page.locator(".error").count() == 1
    page.check("#confirm")
    with page.expect_download() as download:
        page.locator("main form button[type=submit]").click()
    pdf = Path(download.value.path()).read_bytes()
    pins = pins_by_student_no(pdf, [k.student_no for k in kids])
    assert len(pins) == 3

    child_page = new_page(width=1024, height=768)  # a school tablet
    browser_sign_in_student(child_page, kids[1].student_no, pins[kids[1].student_no])
    assert t["hello"] in child_page.locator("h1").inner_text()
    assert "一花1" in child_page.locator("h1").inner_text()
