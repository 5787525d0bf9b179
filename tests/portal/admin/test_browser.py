"""In a browser, in English: the administrator creates a teacher, who then signs in."""

from __future__ import annotations

import pytest

from portal.people.models import Role
from tests.conftest import browser_sign_in_staff

pytestmark = pytest.mark.browser


def test_administrator_creates_a_teacher_in_english(browser_page, new_page, make, session):
    school = make.school(name="みまもり市立こもれび小学校", name_en="Komorebi Elementary")
    make.school_class(school, grade=3, name="1")
    admin = make.staff(Role.administrator, locale="en")
    session.commit()

    page = browser_page
    browser_sign_in_staff(page, admin.email)
    assert page.locator("html").get_attribute("lang") == "en"
    page.get_by_role("link", name="Staff accounts").first.click()
    page.get_by_role("link", name="Add a staff member").click()
    page.fill("#name", "Aoki Ren")
    page.fill("#email", "aoki.ren@example.invalid")
    page.select_option("#role", "teacher")
    page.select_option("#locale", "en")
    # forgetting the school: told so in English
    page.get_by_role("button", name="Create the account").click()
    assert "Choose at least one school for this role." in page.locator(".error").inner_text()
    page.get_by_label("Komorebi Elementary", exact=True).check()
    page.select_option("#classes", label="Komorebi Elementary Grade 3, class 1")
    page.get_by_role("button", name="Create the account").click()
    password = page.locator("#temporary-password").inner_text().strip()
    assert "Temporary password" in page.locator("h1").inner_text()

    # the new teacher signs in, sets up TOTP and must choose a password first
    import pyotp

    teacher = new_page()
    teacher.goto("/staff/signin")
    teacher.fill("#email", "aoki.ren@example.invalid")
    teacher.fill("#password", password)
    teacher.locator("main form button[type=submit]").click()
    teacher.wait_for_url("**/staff/totp/setup")
    secret = teacher.locator(".secret").first.inner_text().replace(" ", "")
    teacher.fill("#code", pyotp.TOTP(secret).now())
    teacher.locator("main form button[type=submit]").click()
    teacher.wait_for_url("**/staff/account/password")
    teacher.fill("#current", password)
    teacher.fill("#password", "my own new password")
    teacher.fill("#password_again", "my own new password")
    teacher.locator("main form button[type=submit]").click()
    teacher.wait_for_url("**/staff/")
    assert teacher.get_by_role("link", name="My classes").first.is_visible()
