"""Sign-in in a real browser, in Japanese and English, for the three kinds of user."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from portal.auth import service as auth
from tests.conftest import (
    PASSWORD,
    browser_set_language,
    browser_sign_in_staff,
    browser_sign_in_student,
)

pytestmark = pytest.mark.browser

TEXT = {
    "ja": {"check_mail": "メールを確認してください", "confirm": "メールアドレスを確認する", "register": "アカウントを作成", "family": "わたしの家族", "not_found": "見つかりません", "staff_home": "職員ホーム", "hello": "こんにちは"},
    "en": {"check_mail": "Check your e-mail", "confirm": "Confirm my address", "register": "Create my account", "family": "My family", "not_found": "Not found", "staff_home": "Staff home", "hello": "Hello"},
}


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_guardian_registers_with_enrolment_code_and_is_refused_another_family(browser_page, app, make, session, outbox, locale):
    child = make.child(name="見守 一花")
    other_child = make.child(name="別家 二郎")
    make.guardian(other_child)
    code = auth.issue_enrolment_code(session, app.config["SECRET_KEY"], child)
    session.commit()

    page = browser_page
    page.goto("/")
    if locale == "en":
        browser_set_language(page, "en")
    page.goto("/family/register")
    page.fill("#code", code.lower().replace("-", " "))
    page.fill("#name", "見守 花子")
    page.fill("#email", f"hanako-{locale}@example.invalid")
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    page.get_by_role("button", name=TEXT[locale]["register"]).click()
    page.wait_for_url("**/family/register/sent")
    assert page.get_by_role("heading", name=TEXT[locale]["check_mail"]).is_visible()
    assert "見守 一花" not in page.content()

    # The address is proven with the e-mailed link (through the outbox), then the family signs in.
    (msg,) = outbox
    link = re.search(r"https?://[^/\s]+(/family/confirm/\S+)", msg.get_content()).group(1)
    page.goto(link)
    page.get_by_role("button", name=TEXT[locale]["confirm"]).click()
    page.wait_for_url("**/family/signin")
    page.fill("#email", f"hanako-{locale}@example.invalid")
    page.fill("#password", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/family/")
    assert page.locator("html").get_attribute("lang") == locale
    assert page.get_by_role("heading", name=TEXT[locale]["family"]).is_visible()
    assert page.get_by_role("link", name="見守 一花").is_visible()

    # Another family's child, by URL: a clear page, nothing of the child shown.
    page.goto(f"/family/children/{other_child.id}")
    assert TEXT[locale]["not_found"] in page.content()
    assert "別家" not in page.content()

    # The code was single use.
    page.context.clear_cookies()
    page.goto("/family/register")
    page.fill("#code", code)
    page.fill("#name", "誰か")
    page.fill("#email", f"someone-{locale}@example.invalid")
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".error")).to_have_count(1)


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_student_signs_in_with_pin_and_is_refused_another_childs_checkin(browser_page, make, session, locale):
    from tests.surveys.conftest import SurveyFactory, open_now

    teacher, cls = make.teacher_with_class(grade=2)
    child = make.child(cls, name="見守 小太郎", pin="482913", locale=locale)
    other = make.child(cls, name="別家 三郎")
    make.guardian(child)
    make.guardian(other)
    other_checkin = open_now(session, SurveyFactory(session, make).schedule(cls, "mood"), other).id
    session.commit()
    page = browser_page
    if locale == "en":
        page.goto("/")
        browser_set_language(page, "en")
    browser_sign_in_student(page, child.student_no, "482913")
    assert TEXT[locale]["hello"] in page.locator("h1").inner_text()

    # Another child's check-in, by URL: a clear page in the child's language, nothing of the other child.
    page.goto(f"/student/checkins/{other_checkin}")
    expect(page.locator("h1")).to_contain_text(TEXT[locale]["not_found"])
    assert page.locator("html").get_attribute("lang") == locale
    assert "別家" not in page.content()


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_teacher_signs_in_with_totp_and_is_refused_another_classs_child(browser_page, make, session, locale):
    teacher, cls = make.teacher_with_class(grade=4)
    other_teacher = make.staff("teacher", schools=[cls.school])
    other_cls = make.school_class(cls.school, grade=4, name="2", teacher=other_teacher)
    other_child = make.child(other_cls, name="別家 四郎")
    make.guardian(other_child)
    teacher.locale = locale
    session.commit()
    page = browser_page
    browser_sign_in_staff(page, teacher.email)
    assert page.get_by_role("heading", name=TEXT[locale]["staff_home"]).is_visible()
    assert page.locator("html").get_attribute("lang") == locale

    # A child of another class of the same school, by URL: refused, in the teacher's language.
    for url in (f"/staff/checkins/children/{other_child.id}", f"/staff/screening/child/{other_child.id}"):
        page.goto(url)
        expect(page.locator("h1")).to_contain_text(TEXT[locale]["not_found"])
        assert page.locator("html").get_attribute("lang") == locale
        assert "別家" not in page.content()
