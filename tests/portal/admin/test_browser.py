"""In a browser, in Japanese and English: the administrator creates a teacher, who then signs in."""

from __future__ import annotations

import pytest

from portal.people.models import Role
from tests.conftest import browser_sign_in_staff

pytestmark = pytest.mark.browser


def _tr(app, locale: str, msgid: str) -> str:
    """The page's words in the locale under test, from the catalogue the pages use."""
    from flask_babel import force_locale, gettext

    with app.test_request_context(), force_locale(locale):
        return gettext(msgid)


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_administrator_creates_a_teacher(browser_page, new_page, app, make, session, locale):
    school = make.school(name="みまもり市立こもれび小学校", name_en="Komorebi Elementary")
    cls = make.school_class(school, grade=3, name="1")
    admin = make.staff(Role.administrator, locale=locale)
    session.commit()

    def t(msgid: str) -> str:
        return _tr(app, locale, msgid)

    if locale == "ja":  # the catalogue really is Japanese here
        assert t("Create the account") != "Create the account"
    page = browser_page
    browser_sign_in_staff(page, admin.email)
    assert page.locator("html").get_attribute("lang") == locale
    page.get_by_role("link", name=t("Staff accounts")).first.click()
    page.get_by_role("link", name=t("Add a staff member")).click()
    page.fill("#name", "Aoki Ren")
    page.fill("#email", "aoki.ren@example.invalid")
    page.select_option("#role", "teacher")
    page.select_option("#locale", locale)
    # forgetting the school: told so in the administrator's language
    page.get_by_role("button", name=t("Create the account")).click()
    assert t("Choose at least one school for this role.") in page.locator(".error").inner_text()
    page.get_by_label(school.name if locale == "ja" else school.name_en, exact=True).check()
    page.select_option("#classes", value=str(cls.id))
    page.get_by_role("button", name=t("Create the account")).click()
    password = page.locator("#temporary-password").inner_text().strip()
    assert t("Temporary password") in page.locator("h1").inner_text()

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
    assert teacher.get_by_role("link", name=t("My classes")).first.is_visible()
