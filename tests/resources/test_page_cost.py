"""Every resources page runs the same number of queries for 2 rows as for 12."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from portal.auth.principal import SYSTEM, Principal
from portal.people.models import Role
from resources import campaigns as camp
from resources import service as catalogue
from resources.campaigns import CampaignData
from resources.models import Channel, Delivery
from resources.service import ScheduleData


@pytest.fixture
def world(session, make, make_service):
    """A coordinator, a guardian, a student, a teacher with a class, a school lead; ``grow(n)`` adds n of everything."""
    school = make.school()
    teacher, cls = make.teacher_with_class(grade=4, school=school)
    lead = make.staff(Role.school_lead, schools=[school])
    coord = make.staff(Role.coordinator)
    student = make.child(cls)
    guardian = make.guardian(student, email="family@example.invalid")
    state = {"n": 0}

    def grow(n: int) -> None:
        for _ in range(n):
            state["n"] += 1
            k = state["n"]
            s = make_service(f"場所{k:02d}", categories=["study_support", "health"], min_age_months=0,
                             max_age_months=18 * 12,
                             schedules=[ScheduleData("WEEKLY", "MO", time(15), time(17)),
                                        ScheduleData("MONTHLY", "2SA", time(10), time(12))])
            if k % 3 == 0:
                s.last_verified_on = catalogue._today() - timedelta(days=200)  # due for re-check
            catalogue.toggle_favourite(session, Principal("guardian", guardian.id, "guardian"), s)
            catalogue.toggle_favourite(session, Principal("student", student.id, "student"), s)
            # A family without e-mail in the teacher's class gets letters.
            make.guardian(make.child(cls), password=None).email = None
            session.flush()
            c = camp.save_campaign(session, SYSTEM, CampaignData(title_ja=f"お知らせ{k}", service_ids=[s.id]))
            camp.send_now(session, SYSTEM, c)
            camp.save_campaign(session, SYSTEM, CampaignData(title_ja=f"下書き{k}", service_ids=[s.id]))
        session.commit()

    return {"coord": coord, "guardian": guardian, "student": student, "teacher": teacher, "lead": lead,
            "grow": grow, "cls": cls}


def _last_campaign_id(session):
    from resources.models import Campaign, CampaignStatus

    return session.query(Campaign).filter_by(status=CampaignStatus.sent).order_by(Campaign.id.desc()).first().id


def _last_service_id(session):
    from resources.models import Service

    return session.query(Service).order_by(Service.id.desc()).first().id


PAGES = [
    ("anonymous", lambda w, s: "/resources/"),
    ("guardian", lambda w, s: "/resources/"),
    ("student", lambda w, s: "/resources/"),
    ("guardian", lambda w, s: "/resources/favourites"),
    ("guardian", lambda w, s: "/resources/inbox"),
    ("guardian", lambda w, s: "/resources/inbox/" + str(
        s.query(Delivery).filter_by(guardian_id=w["guardian"].id, channel=Channel.inbox)
        .order_by(Delivery.id.desc()).first().id)),  # an unread one each time
    ("guardian", lambda w, s: f"/resources/{_last_service_id(s)}"),
    ("coord", lambda w, s: "/resources/manage/"),
    ("coord", lambda w, s: f"/resources/manage/{_last_service_id(s)}/edit"),
    ("coord", lambda w, s: "/resources/campaigns/"),
    ("coord", lambda w, s: f"/resources/campaigns/{_last_campaign_id(s)}"),
    ("coord", lambda w, s: f"/resources/campaigns/{_last_campaign_id(s)}/preview/en"),
    ("coord", lambda w, s: "/resources/campaigns/new"),
    ("teacher", lambda w, s: "/resources/letters/"),
    ("lead", lambda w, s: "/resources/letters/"),
]


@pytest.mark.parametrize("who, url", PAGES, ids=[f"{w}:{i}" for i, (w, _u) in enumerate(PAGES)])
def test_pages_use_a_constant_number_of_queries(client, session, world, login, count_queries, who, url):
    if who != "anonymous":
        login(world[who])
    counts = []
    for n in (2, 10):
        world["grow"](n)
        path = url(world, session)
        session.expire_all()
        with count_queries() as box:
            resp = client.get(path)
        assert resp.status_code == 200, path
        if path.startswith("/resources/letters"):
            assert resp.get_data(as_text=True).count(".pdf") >= n  # the letters are there to count
        counts.append(box)
    small, big = counts
    assert small["n"] == big["n"], f"{small['n']} queries with 2 of each, {big['n']} with 12: {big['sql']}"
