"""Keeping the catalogue and finding things in it."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from icalendar import Calendar

from portal.auth.principal import SYSTEM
from portal.people.models import Role
from resources import service as catalogue
from resources.models import ServiceStatus
from resources.service import ResourceError, ScheduleData, Search, ServiceData


def test_html_and_script_in_a_description_are_removed(session, make_service):
    s = make_service(description_ja='<script>alert("x")</script><b>夕ごはん</b> & <a href="javascript:x">あそび</a>')
    assert s.description_ja == "夕ごはん & あそび"


def test_upside_down_age_range_is_refused(session, english):
    with pytest.raises(ResourceError) as exc:
        catalogue.save_service(session, SYSTEM, ServiceData(name_ja="x", min_age_months=120, max_age_months=60))
    assert "upside down" in str(exc.value.message)


def test_bad_schedule_days_are_refused(session):
    with pytest.raises(ResourceError):
        catalogue.save_service(session, SYSTEM, ServiceData(name_ja="x", schedules=[ScheduleData("WEEKLY", "2SA")]))
    with pytest.raises(ResourceError):
        catalogue.save_service(session, SYSTEM, ServiceData(
            name_ja="x", schedules=[ScheduleData("WEEKLY", "MO", time(18), time(9))]))


def test_drafts_and_archived_entries_are_not_shown_to_families(session, make_service):
    draft = make_service("下書き", publish=False)
    live = make_service("公開中")
    gone = make_service("終了")
    catalogue.archive(session, SYSTEM, gone)
    names = [s.name_ja for s in catalogue.find(session, Search())]
    assert names == ["公開中"]
    assert catalogue.published_or_none(session, draft.id) is None
    assert catalogue.published_or_none(session, live.id) is live
    with pytest.raises(ResourceError):
        catalogue.publish(session, SYSTEM, live)


def test_unverified_entries_are_listed_for_recheck_then_hidden_after_grace(session, make_service):
    today = date(2026, 11, 1)
    fresh = make_service("新しい")
    due = make_service("確認待ち")
    old = make_service("古い")
    fresh.last_verified_on = today - timedelta(days=30)
    due.last_verified_on = today - timedelta(days=200)
    old.last_verified_on = today - timedelta(days=230)
    session.flush()
    shown, hidden = catalogue.needing_recheck(session, today)
    assert [s.name_ja for s in shown] == ["確認待ち"] and [s.name_ja for s in hidden] == ["古い"]
    assert {s.name_ja for s in catalogue.find(session, Search(), today)} == {"新しい", "確認待ち"}
    catalogue.mark_verified(session, SYSTEM, old, today=today)
    assert "古い" in {s.name_ja for s in catalogue.find(session, Search(), today)}


def test_search_by_age_category_district_language_and_cost(session, make_service):
    make_service("乳幼児ひろば", categories=["childcare"], min_age_months=0, max_age_months=35, district="ひだまり")
    make_service("学習室", categories=["study_support"], min_age_months=12 * 12, max_age_months=15 * 12 + 11,
                 languages=["ja", "pt"], is_free=False, fees_ja="月500円")
    make_service("だれでも食堂", categories=["childrens_cafeteria"])

    def names(**kw):
        return sorted(s.name_ja for s in catalogue.find(session, Search(**kw)))

    assert names(age_years=2) == ["だれでも食堂", "乳幼児ひろば"]
    assert names(age_years=13) == ["だれでも食堂", "学習室"]
    assert names(category="study_support") == ["学習室"]
    assert names(district="こもれび") == ["だれでも食堂", "学習室"]  # city-wide entries show everywhere
    assert names(language="pt") == ["学習室"]
    assert names(free_only=True) == ["だれでも食堂", "乳幼児ひろば"]
    assert names(q="食堂") == ["だれでも食堂"]


def test_ics_has_a_weekly_recurring_event_in_tokyo_time(session, make_service):
    s = make_service(schedules=[ScheduleData("WEEKLY", "MO,WE", time(15), time(18), "放課後", "After school")])
    cal = Calendar.from_ical(catalogue.ics_for(s, "en"))
    ev = next(iter(cal.walk("VEVENT")))
    assert str(ev["summary"]) == "Hidamari Children's Cafeteria"
    assert ev["rrule"]["FREQ"] == ["WEEKLY"] and ev["rrule"]["BYDAY"] == ["MO", "WE"]
    start = ev.decoded("dtstart")
    assert start.weekday() in (0, 2) and start.hour == 15 and str(start.tzinfo) == "Asia/Tokyo"
    assert ev.decoded("dtend").hour == 18


def test_monthly_schedule_text(app, make_service):
    s = make_service(schedules=[ScheduleData("MONTHLY", "2SA", time(10), time(12))])
    with app.test_request_context():
        from flask_babel import force_locale

        with force_locale("en"):
            assert catalogue.schedule_text(s.schedules[0]) == "Every month: second Saturday 10:00–12:00"


# -- pages ---------------------------------------------------------------------


def test_anyone_can_browse_and_open_a_page_with_map_link_and_calendar(client, session, make_service):
    s = make_service()
    session.commit()
    page = client.get("/resources/").get_data(as_text=True)
    assert "子ども食堂ひだまり" in page
    detail = client.get(f"/resources/{s.id}").get_data(as_text=True)
    assert "openstreetmap.org/search?query=" in detail and "calendar.ics" in detail
    resp = client.get(f"/resources/{s.id}/calendar.ics")
    assert resp.status_code == 200 and resp.mimetype == "text/calendar"
    assert b"BEGIN:VEVENT" in resp.data


def test_a_draft_page_is_not_found_for_families(client, session, make_service):
    s = make_service(publish=False)
    session.commit()
    assert client.get(f"/resources/{s.id}").status_code == 404
    assert client.get(f"/resources/{s.id}/calendar.ics").status_code == 404


def test_guardian_sees_ages_filled_in_from_their_children(client, session, make, login, make_service):
    today = catalogue._today()
    child = make.child(birth_date=date(today.year - 4, 1, 1) if today.month > 1 else date(today.year - 5, 1, 1))
    age = catalogue.age_on(child.birth_date, today)
    guardian = make.guardian(child)
    make_service("幼児むけ", min_age_months=0, max_age_months=6 * 12 + 11)
    make_service("中学生むけ", min_age_months=12 * 12, max_age_months=15 * 12 + 11)
    session.commit()
    login(guardian)
    page = client.get("/resources/").get_data(as_text=True)
    assert f'name="age" type="number" value="{age}"' in page or f'value="{age}"' in page
    assert "幼児むけ" in page and "中学生むけ" not in page
    everything = client.get("/resources/?age=").get_data(as_text=True)
    assert "中学生むけ" in everything


def test_bad_age_in_search_gives_a_clear_message(client, session, make_service):
    make_service()
    session.commit()
    page = client.get("/resources/?age=99").get_data(as_text=True)
    assert "Give an age between 0 and 20." in page or "0歳から20歳" in page


def test_student_sees_words_for_their_age(client, session, make, login, make_service):
    make_service()
    child = make.child(grade=2)
    session.commit()
    login(child)
    page = client.get("/resources/").get_data(as_text=True)
    assert "Places to eat together" in page or "みんなでごはん" in page


def test_favourites(client, session, make, login, post_form, make_service):
    s = make_service()
    guardian = make.guardian(make.child())
    session.commit()
    login(guardian)
    post_form(f"/resources/{s.id}/favourite", {}, page=f"/resources/{s.id}")
    assert "子ども食堂ひだまり" in client.get("/resources/favourites").get_data(as_text=True)
    post_form(f"/resources/{s.id}/favourite", {}, page=f"/resources/{s.id}")
    assert "子ども食堂ひだまり" not in client.get("/resources/favourites").get_data(as_text=True)


def test_coordinator_creates_a_draft_and_publishes_it(client, session, make, login, post_form):
    coord = make.staff(Role.coordinator)
    session.commit()
    login(coord)
    resp = post_form("/resources/manage/new", {
        "name_ja": "ひだまり学習室", "name_en": "Hidamari Study Room", "description_ja": "<script>x</script>宿題をいっしょに",
        "categories": "study_support", "min_age": "9", "max_age": "15", "languages": "ja", "is_free": "y",
        "schedules-0-freq": "WEEKLY", "schedules-0-days": ["TU", "TH"], "schedules-0-opens_at": "16:00",
        "schedules-0-closes_at": "18:00",
    })
    assert resp.status_code == 302
    from resources.models import Service

    s = session.query(Service).one()
    assert s.status == ServiceStatus.draft and s.description_ja == "宿題をいっしょに"
    assert (s.min_age_months, s.max_age_months) == (108, 191) and s.schedules[0].byday == "TU,TH"
    post_form(f"/resources/manage/{s.id}/publish", {}, page=f"/resources/manage/{s.id}/edit")
    session.expire_all()
    assert session.get(Service, s.id).status == ServiceStatus.published
    assert client.get(f"/resources/{s.id}").status_code == 200


def test_coordinator_form_refuses_upside_down_ages_with_a_message(client, session, make, login, post_form):
    coord = make.staff(Role.coordinator, locale="en")
    session.commit()
    login(coord)
    resp = post_form("/resources/manage/new", {"name_ja": "逆さま", "min_age": "12", "max_age": "6", "languages": "ja"})
    assert resp.status_code == 200
    assert "upside down" in resp.get_data(as_text=True)
    from resources.models import Service

    assert session.query(Service).count() == 0


def test_a_javascript_link_is_refused_even_from_an_import(session, english):
    from resources import hsds

    with pytest.raises(ResourceError) as exc:
        catalogue.save_service(session, SYSTEM, ServiceData(name_ja="x", url="javascript:alert(1)"))
    assert "https://" in str(exc.value.message)
    import json

    raw = json.dumps([{"id": "1", "name": "x", "status": "active", "url": "javascript:alert(1)"}]).encode()
    with pytest.raises(ResourceError):
        hsds.import_json(session, SYSTEM, raw)


def test_coordinator_sees_entries_to_recheck_and_marks_them_checked(client, session, make, login, post_form, make_service):
    coord = make.staff(Role.coordinator, locale="en")
    old = make_service("古い項目")
    old.last_verified_on = catalogue._today() - timedelta(days=400)
    session.commit()
    login(coord)
    page = client.get("/resources/manage/").get_data(as_text=True)
    assert "To re-check" in page and "Hidden from families" in page
    assert client.get(f"/resources/{old.id}").status_code == 200  # the coordinator still sees it
    post_form(f"/resources/manage/{old.id}/verify", {"next": "/resources/manage/"}, page="/resources/manage/")
    session.expire_all()
    assert catalogue.published_or_none(session, old.id) is not None


def test_markup_that_survives_as_text_is_shown_escaped_never_run(client, session, make, make_service, outbox):
    """Entity-encoded markup is kept as the text it spells and escaped on every page and in the e-mail."""
    from resources import campaigns as camp

    s = make_service("&lt;b&gt;太字&lt;/b&gt;", description_ja="&lt;script&gt;alert(1)&lt;/script&gt;説明",
                     description_en="<img src=x onerror=alert(1)>Dinner")
    assert s.name_ja == "<b>太字</b>" and s.description_ja == "<script>alert(1)</script>説明"
    assert s.description_en == "Dinner"
    make.guardian(make.child(), email="family@example.invalid")
    session.commit()
    for url in ("/resources/", f"/resources/{s.id}"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in page and "<b>太字" not in page
        assert "&lt;b&gt;太字&lt;/b&gt;" in page
    c = camp.save_campaign(session, SYSTEM, camp.CampaignData(title_ja="<i>題</i>", body_ja="&lt;script&gt;x",
                                                              service_ids=[s.id]))
    assert (c.title_ja, c.body_ja) == ("題", "<script>x")
    camp.send_now(session, SYSTEM, c)
    camp.deliver_emails(session)
    (msg,) = outbox
    html = next(p for p in msg.walk() if p.get_content_type() == "text/html").get_content()
    assert "<script>" not in html and "&lt;script&gt;x" in html and "&lt;b&gt;太字&lt;/b&gt;" in html
