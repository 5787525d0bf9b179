"""In a real browser, in Japanese and in English: a coordinator publishes a service
and sends a campaign; a guardian finds it by their child's age, downloads the
.ics, prints the page, saves it and reads the inbox; a teacher prints the letters;
a student sees the catalogue in words for their age."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from flask_babel import force_locale
from flask_babel import gettext as gettext_
from playwright.sync_api import expect

from portal.auth.principal import SYSTEM
from portal.people.models import Role
from resources import campaigns as camp
from resources import service as catalogue
from resources.models import (
    Campaign,
    CampaignStatus,
    Channel,
    Delivery,
    DeliveryStatus,
    Service,
    ServiceStatus,
)
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
    """The page's words in a language: ``t("en", "Publish", **params)``."""

    def _t(locale: str, msgid: str, **params) -> str:
        with app.test_request_context(), force_locale(locale):
            return gettext_(msgid, **params)

    return _t


@pytest.mark.parametrize("locale", LOCALES)
def test_coordinator_publishes_a_service_and_sends_a_campaign(browser_page, make, session, outbox, t, locale):
    coord = make.staff(Role.coordinator)
    make.guardian(make.child(grade=4), email="family-ja@example.invalid", locale="ja")
    make.guardian(make.child(grade=5), email="family-en@example.invalid", locale="en")
    session.commit()

    page = browser_page
    browser_sign_in_staff(page, coord.email)
    if locale == "en":
        browser_set_language(page, "en")
    page.goto("/resources/manage/")
    page.get_by_role("link", name=t(locale, "New entry")).click()
    page.fill("#name_ja", "ひだまり学習室")
    page.fill("#name_en", "Hidamari Study Room")
    page.fill("#description_ja", "宿題をいっしょにします。<script>alert(1)</script>")
    page.check("input[name=categories][value=study_support]")
    page.fill("#min_age", "8")
    page.fill("#max_age", "12")
    page.check("input[name='schedules-0-days'][value=TU]")
    page.check("input[name='schedules-0-days'][value=TH]")
    page.fill("#schedules-0-opens_at", "16:00")
    page.fill("#schedules-0-closes_at", "18:00")
    page.locator("form.resource-form button[type=submit]").click()
    page.wait_for_url("**/resources/manage/*/edit")
    expect(page.locator("body")).to_contain_text(t(locale, "Draft"))
    page.get_by_role("button", name=t(locale, "Publish"), exact=True).click()
    expect(page.locator(".flashes")).to_contain_text(t(locale, "Published: families can find it now."))
    service = session.query(Service).one()
    session.refresh(service)
    assert service.status == ServiceStatus.published and service.description_ja == "宿題をいっしょにします。"

    page.get_by_role("link", name=t(locale, "Send to families")).click()
    page.wait_for_url("**/resources/campaigns/new*")
    assert page.locator(f"input[name=services][value='{service.id}']").is_checked()
    page.fill("#title_ja", "学習室のご案内")
    page.fill("#title_en", "A study room near you")
    page.fill("#body_ja", "すべてのご家庭にお知らせしています。")
    page.fill("#body_en", "We are telling every family.")
    page.check("input[name=audience][value=all]")
    page.locator("form.campaign-form button[type=submit]").click()
    page.wait_for_url("**/resources/campaigns/*")
    expect(page.locator("body")).to_contain_text(
        t(locale, "%(f)d families: %(i)d in the inbox, %(e)d by e-mail, %(l)d printed letters.", f=2, i=2, e=2, l=0))
    page.get_by_role("link", name=t(locale, "Preview in English")).click()
    expect(page.locator(".campaign-preview")).to_contain_text("A study room near you")
    expect(page.locator(".campaign-preview")).to_contain_text("Hidamari Study Room")
    page.go_back()
    page.get_by_role("link", name=t(locale, "Preview in Japanese")).click()
    expect(page.locator(".campaign-preview")).to_contain_text("学習室のご案内")
    page.go_back()
    page.get_by_role("button", name=t(locale, "Send or schedule")).click()
    expect(page.locator(".flashes")).to_contain_text(
        t(locale, "Sent: %(i)d inbox messages, %(e)d e-mails, %(l)d letters to print.", i=2, e=2, l=0))
    expect(page.locator(".campaign-stats")).to_contain_text(t(locale, "Inbox messages read: %(n)d", n=0))

    campaign = session.query(Campaign).one()
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.sent
    assert session.query(Delivery).filter_by(campaign_id=campaign.id, channel=Channel.inbox).count() == 2
    assert sorted(str(m["Subject"]) for m in outbox) == ["A study room near you", "学習室のご案内"]


@pytest.mark.parametrize("locale", LOCALES)
def test_guardian_finds_a_service_by_child_age_and_downloads_the_ics(browser_page, make, make_service, session, t,
                                                                      locale):
    today = catalogue._today()
    child = make.child(name="見守 花", birth_date=date(today.year - 9, 1, 1) if today.month > 1 else date(today.year - 10, 1, 1))
    guardian = make.guardian(child, email="hana-family@example.invalid", locale=locale)
    age = catalogue.age_on(child.birth_date, today)
    study = make_service("小学生の学習室", name_en="Study Room for Children", categories=["study_support"],
                         min_age_months=(age - 1) * 12, max_age_months=(age + 1) * 12 + 11)
    make_service("赤ちゃんひろば", name_en="Baby Corner", categories=["childcare"], min_age_months=0, max_age_months=35)
    c = camp.save_campaign(session, SYSTEM, camp.CampaignData(
        title_ja="学習室のお知らせ", title_en="About the study room", service_ids=[study.id]))
    camp.send_now(session, SYSTEM, c)
    session.commit()
    name = {"ja": "小学生の学習室", "en": "Study Room for Children"}[locale]

    page = browser_page
    browser_sign_in_guardian(page, guardian.email)
    browser_set_language(page, locale)
    page.goto("/resources/")
    assert page.locator("#age").input_value() == str(age)  # filled in from the child's birth date
    expect(page.get_by_role("link", name=name)).to_be_visible()
    expect(page.get_by_role("link", name={"ja": "赤ちゃんひろば", "en": "Baby Corner"}[locale])).to_have_count(0)
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.get_by_role("button", name=t(locale, "Print this page"))).to_be_visible()  # shown by the script
    with page.expect_download() as info:
        page.get_by_role("link", name=t(locale, "Add to my calendar (.ics)")).click()
    download = info.value
    assert download.suggested_filename.endswith(".ics")
    body = Path(download.path()).read_text(encoding="utf-8")
    assert "BEGIN:VEVENT" in body and "RRULE:FREQ=WEEKLY;BYDAY=WE" in body and name in body

    # Printed, the page keeps the facts and drops the header and the buttons.
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.get_by_role("button", name=t(locale, "Print this page"))).to_be_hidden()
    expect(page.locator(".resource-detail .facts")).to_be_visible()
    page.emulate_media(media="screen")

    page.get_by_role("button", name=t(locale, "Save to favourites")).click()
    expect(page.locator(".flashes")).to_contain_text(t(locale, "Saved to your favourites."))
    page.goto("/resources/favourites")
    expect(page.get_by_role("link", name=name)).to_be_visible()

    page.goto("/resources/inbox")
    page.get_by_role("link", name={"ja": "学習室のお知らせ", "en": "About the study room"}[locale]).click()
    expect(page.get_by_role("link", name=name)).to_be_visible()
    session.expire_all()
    assert camp.stats(session, c.id)["reads"] == 1


@pytest.mark.parametrize("locale", LOCALES)
def test_teacher_prints_the_letters_for_families_without_email(browser_page, make, make_service, session, t, locale):
    teacher, cls = make.teacher_with_class(grade=3)
    for name, lang in (("紙山 花", "en"), ("日本 一郎", "ja")):
        make.guardian(make.child(cls, name=name), password=None, locale=lang).email = None  # paper only
    service = make_service()
    c = camp.save_campaign(session, SYSTEM, camp.CampaignData(title_ja="お知らせ", service_ids=[service.id]))
    camp.send_now(session, SYSTEM, c)
    session.commit()

    page = browser_page
    browser_sign_in_staff(page, teacher.email)
    if locale == "en":
        browser_set_language(page, "en")
    page.goto("/resources/letters/")
    link = page.get_by_role("link", name=t(locale, "Letters (PDF, %(n)d pages)", n=2))
    with page.expect_download() as info:
        link.click()
    pdf = Path(info.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    session.expire_all()
    assert session.query(Delivery).filter_by(channel=Channel.letter, status=DeliveryStatus.sent).count() == 2
    page.reload()
    expect(page.locator("main")).to_contain_text(t(locale, "printed"))


@pytest.mark.parametrize("locale", LOCALES)
def test_student_sees_the_catalogue_in_words_for_their_age(browser_page, make, make_service, session, t, locale):
    child = make.child(grade=2, pin="2468")
    make_service(categories=["counselling"])
    session.commit()

    page = browser_page
    browser_sign_in_student(page, child.student_no, "2468")
    browser_set_language(page, locale)
    page.goto("/resources/")
    expect(page.get_by_role("heading", name=t(locale, "Places that can help you"))).to_be_visible()
    expect(page.locator(".resource-list")).to_contain_text(t(locale, "Someone to talk to"))


@pytest.mark.parametrize("locale", LOCALES)
def test_coordinator_imports_open_data_and_sees_the_rows_to_check(browser_page, make, session, t, locale, tmp_path):
    coord = make.staff(Role.coordinator)
    session.commit()
    csv_file = tmp_path / "kosodate.csv"
    csv_file.write_bytes(("名称,施設種別,住所,受入年齢\r\n"
                          "こもれび保育園,保育所,石川県みまもり市2-2,1歳10か月\r\n"
                          "なぞの施設,児童館,石川県みまもり市3-3,いつでも\r\n").encode("cp932"))

    page = browser_page
    browser_sign_in_staff(page, coord.email)
    if locale == "en":
        browser_set_language(page, "en")
    page.goto("/resources/manage/")
    page.get_by_role("link", name=t(locale, "Import"), exact=True).click()
    page.select_option("#kind", "opendata")
    page.set_input_files("#file", str(csv_file))
    page.locator("main form button[type=submit]").click()
    expect(page.locator(".flashes")).to_contain_text(t(locale, "Imported %(n)d drafts; %(k)d rows skipped.", n=2, k=0))
    expect(page.locator("main")).to_contain_text(
        t(locale, "Line %(n)d: %(msg)s", n=3, msg=t(locale, "Could not read the ages accepted: left open, please check.")))
    page.get_by_role("link", name=t(locale, "See the drafts")).click()
    expect(page.get_by_role("link", name="こもれび保育園")).to_be_visible()
    nursery = session.query(Service).filter_by(name_ja="こもれび保育園").one()
    assert (nursery.min_age_months, nursery.max_age_months) == (22, None) and nursery.status == ServiceStatus.draft

    # A broken file: a clear message, nothing imported.
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    page.goto("/resources/manage/import")
    page.select_option("#kind", "hsds_json")
    page.set_input_files("#file", str(bad))
    page.locator("main form button[type=submit]").click()
    expect(page.locator("main")).to_contain_text(t(locale, "This file is not valid JSON."))
    assert session.query(Service).count() == 2
