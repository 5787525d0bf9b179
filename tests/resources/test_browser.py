"""In a real browser: a coordinator publishes a service and sends a campaign;
a guardian finds it by their child's age and downloads the .ics."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import expect

from portal.people.models import Role
from resources import service as catalogue
from resources.models import Campaign, CampaignStatus, Channel, Delivery, Service, ServiceStatus
from tests.conftest import browser_set_language, browser_sign_in_guardian, browser_sign_in_staff

pytestmark = pytest.mark.browser


def test_coordinator_publishes_a_service_and_sends_a_campaign(browser_page, make, session, outbox):
    coord = make.staff(Role.coordinator)
    child = make.child(grade=4)
    make.guardian(child, email="family-ja@example.invalid", locale="ja")
    make.guardian(make.child(grade=5), email="family-en@example.invalid", locale="en")
    session.commit()

    page = browser_page
    browser_sign_in_staff(page, coord.email)
    page.goto("/resources/manage/new")
    page.fill("#name_ja", "ひだまり学習室")
    page.fill("#name_en", "Hidamari Study Room")
    page.fill("#description_ja", "宿題をいっしょにします。")
    page.check("input[name=categories][value=study_support]")
    page.fill("#min_age", "8")
    page.fill("#max_age", "12")
    page.check("input[name='schedules-0-days'][value=TU]")
    page.check("input[name='schedules-0-days'][value=TH]")
    page.fill("#schedules-0-opens_at", "16:00")
    page.fill("#schedules-0-closes_at", "18:00")
    page.locator("form.resource-form button[type=submit]").click()
    page.wait_for_url("**/resources/manage/*/edit")
    expect(page.locator("body")).to_contain_text("下書き")
    page.get_by_role("button", name="公開").click()
    assert "公開しました" in page.locator(".flashes").inner_text()
    service = session.query(Service).one()
    session.refresh(service)
    assert service.status == ServiceStatus.published

    page.get_by_role("link", name="家庭に送る").click()
    page.wait_for_url("**/resources/campaigns/new*")
    assert page.locator(f"input[name=services][value='{service.id}']").is_checked()
    page.fill("#title_ja", "学習室のご案内")
    page.fill("#title_en", "A study room near you")
    page.fill("#body_ja", "すべてのご家庭にお知らせしています。")
    page.fill("#body_en", "We are telling every family.")
    page.check("input[name=audience][value=all]")
    page.locator("form.campaign-form button[type=submit]").click()
    page.wait_for_url("**/resources/campaigns/*")
    expect(page.locator("body")).to_contain_text("2家庭")
    page.get_by_role("link", name="英語でプレビュー").click()
    expect(page.locator("body")).to_contain_text("A study room near you")
    expect(page.locator("body")).to_contain_text("Hidamari Study Room")
    page.go_back()
    page.get_by_role("button", name="送信・予約する").click()
    assert "送信しました" in page.locator(".flashes").inner_text()

    campaign = session.query(Campaign).one()
    session.refresh(campaign)
    assert campaign.status == CampaignStatus.sent
    assert session.query(Delivery).filter_by(campaign_id=campaign.id, channel=Channel.inbox).count() == 2
    subjects = sorted(str(m["Subject"]) for m in outbox)
    assert subjects == ["A study room near you", "学習室のご案内"]


def test_guardian_finds_a_service_by_child_age_and_downloads_the_ics(browser_page, make, make_service, session):
    today = catalogue._today()
    child = make.child(name="見守 花", birth_date=date(today.year - 9, 1, 1) if today.month > 1 else date(today.year - 10, 1, 1))
    guardian = make.guardian(child, email="hana-family@example.invalid", locale="ja")
    age = catalogue.age_on(child.birth_date, today)
    make_service("小学生の学習室", name_en="Study Room for Children", categories=["study_support"],
                 min_age_months=(age - 1) * 12, max_age_months=(age + 1) * 12 + 11)
    make_service("赤ちゃんひろば", name_en="Baby Corner", categories=["childcare"], min_age_months=0, max_age_months=35)
    session.commit()

    page = browser_page
    browser_sign_in_guardian(page, guardian.email)
    browser_set_language(page, "en")
    page.goto("/resources/")
    assert page.locator("#age").input_value() == str(age)
    assert page.get_by_role("link", name="Study Room for Children").is_visible()
    assert page.get_by_role("link", name="Baby Corner").count() == 0
    page.get_by_role("link", name="Study Room for Children").click()
    assert page.get_by_role("heading", name="Study Room for Children").is_visible()
    assert page.get_by_role("button", name="Print this page").is_visible()  # shown by the script
    with page.expect_download() as info:
        page.get_by_role("link", name="Add to my calendar (.ics)").click()
    download = info.value
    assert download.suggested_filename.endswith(".ics")
    body = Path(download.path()).read_text(encoding="utf-8")
    assert "BEGIN:VEVENT" in body and "RRULE:FREQ=WEEKLY;BYDAY=WE" in body and "Study Room for Children" in body
