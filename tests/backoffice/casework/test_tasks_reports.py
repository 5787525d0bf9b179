"""Tasks, reminders, register, dashboards, PDF and CSV; constant query counts."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from sqlalchemy import select

from backoffice.casework import reports, tasks
from backoffice.casework import service as cw
from backoffice.casework.models import Case, Notice
from portal.auth.service import principal_for
from portal.scheduler import registered_jobs
from tests.backoffice.casework.conftest import future


def _case_with_plan(session, world, flagged, *, owner=None, due=None):
    child, flag = flagged(world.cls)
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    cw.assess(session, world.p(world.teacher), case.id, case.version, cw.AssessmentData(proposal="support_needed"))
    m = cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    cw.list_case(session, world.p(world.lead), m.id, case.id)
    cw.decide(session, world.p(world.lead), m.id, case.id, case.version, "support_plan")
    cw.save_plan(session, world.p(world.lead), case.id, case.version, cw.PlanData(
        review_date=future(30), goals=["g"], actions=[cw.ActionData("a", (owner or world.counsellor).id, due or future(5))]))
    return case


def test_tasks_come_from_due_dates_with_overdue_lists_per_person_and_school(session, world, flagged, today):
    child, flag = flagged(world.cls)
    waiting = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    planned = _case_with_plan(session, world, flagged)
    cw.refer(session, world.p(world.lead), planned.id, "social_worker", receiver_id=world.ssw.id)

    mine = tasks.tasks_for(session, world.p(world.teacher), mine=True, today=today)
    assert {(t.kind, t.case_id) for t in mine} == {("assessment_due", waiting.id), ("review_due", planned.id)}
    assert [t.kind for t in tasks.tasks_for(session, world.p(world.counsellor), mine=True, today=today)] == ["action_due"]
    assert [t.kind for t in tasks.tasks_for(session, world.p(world.ssw), mine=True, today=today)] == ["referral_waiting"]

    # Three weeks on, the assessment and the action are overdue; the lead sees them for the school.
    later = today + timedelta(days=21)
    overdue = tasks.tasks_for(session, world.p(world.lead), mine=False, today=later, overdue_only=True)
    assert {t.kind for t in overdue} == {"assessment_due", "action_due", "referral_waiting"}
    assert all(t.overdue(later) for t in overdue)
    assert tasks.tasks_for(session, world.p(world.other_teacher), mine=True, today=later) == []


def test_reminders_once_a_day_with_counts_only(session, world, flagged, today, outbox):
    from datetime import UTC, datetime, time

    flagged_child, flag = flagged(world.cls, days_ago=20)
    cw.open_from_flag(session, world.p(world.teacher), flag.id)
    now = datetime.combine(today, time(0, 0), tzinfo=UTC)
    assert tasks.send_reminders(session, now) == {"reminded": 1}
    assert tasks.send_reminders(session, now) == {"reminded": 0}
    n = session.scalars(select(Notice).where(Notice.kind == "tasks_due")).one()
    assert n.staff_id == world.teacher.id and n.params == {"overdue": 1, "today": 0}
    assert len(outbox) == 1 and outbox[0]["To"] == world.teacher.email
    body = outbox[0].get_content()
    assert "1" in body and flagged_child.name not in body
    assert "casework.daily" in registered_jobs()


def test_the_daily_job_opens_cases_for_new_flags(session, world, flagged, today):
    from portal.orm import utcnow

    child, flag = flagged(world.cls)
    tasks.daily(session, utcnow())
    case = session.scalar(select(Case).where(Case.flag_id == flag.id))
    assert case is not None and case.assessment_due == today + timedelta(days=cw.ASSESSMENT_DAYS)
    tasks.daily(session, utcnow())
    assert len(session.scalars(select(Case)).all()) == 1


def test_queue_orders_most_urgent_then_newest_and_shows_reasons(app, session, world, flagged):
    old_low, _ = flagged(world.cls, urgency=1, days_ago=3, name="低 一郎")
    new_high, _ = flagged(world.cls, urgency=3, days_ago=0, name="高 二郎")
    old_high, _ = flagged(world.cls, urgency=3, days_ago=5, name="高 三郎")
    flagged(world.other_cls, urgency=3, name="他 四郎")
    with app.test_request_context():
        items, alerts = reports.queue(session, world.p(world.teacher), "ja")
    assert [i.child_name for i in items] == ["高 二郎", "高 三郎", "低 一郎"]
    assert "12" in items[0].reasons[0]


def _many_cases(session, world, flagged, n):
    for i in range(n):
        child, flag = flagged(world.cls, urgency=1 + i % 3)
        case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
        if i % 2:
            cw.assess(session, world.p(world.teacher), case.id, case.version, cw.AssessmentData(proposal="support_needed"))


@pytest.mark.parametrize("what", ["register", "dashboard", "queue", "tasks", "school_tasks", "municipality", "meetings"])
def test_lists_and_dashboards_use_a_constant_number_of_queries(app, session, make, world, flagged, count_queries, what):
    coordinator = principal_for(make.staff("coordinator"))

    def run():
        lead, teacher = world.p(world.lead), world.p(world.teacher)
        with app.test_request_context():
            if what == "register":
                reports.register(session, lead)
            elif what == "dashboard":
                reports.dashboard(session, lead)
            elif what == "queue":
                reports.queue(session, teacher, "ja")
            elif what == "tasks":
                tasks.tasks_for(session, teacher, mine=True)
            elif what == "school_tasks":
                tasks.tasks_for(session, lead, mine=False)
            elif what == "municipality":
                reports.municipality(session, coordinator)
            elif what == "meetings":
                cw.meetings_for(session, lead)
        session.commit()

    _many_cases(session, world, flagged, 2)
    session.commit()
    with count_queries() as small:
        run()
    _many_cases(session, world, flagged, 12)
    session.commit()
    with count_queries() as big:
        run()
    assert small["n"] == big["n"], f"{what}: {small['n']} queries with 2 cases, {big['n']} with 14: {big['sql']}"
    assert big["n"] <= 10


def test_dashboard_counts_and_days_to_decision(session, world, flagged):
    _case_with_plan(session, world, flagged)
    child, flag = flagged(world.cls)
    cw.open_from_flag(session, world.p(world.teacher), flag.id)
    d = reports.dashboard(session, world.p(world.lead))
    assert d.by_status["plan_active"] == 1 and d.by_status["flagged"] == 1
    assert d.open_cases == 2 and d.decided == 1 and d.median_days_to_decision == 0
    muni = reports.municipality(session, principal_for(world.lead))
    assert muni[0].open_cases == 2


def test_register_csv_cannot_carry_a_formula(app, session, world, flagged, login):
    flagged(world.cls, name="=HYPERLINK(\"http://x\")")
    child, flag = flagged(world.cls, name="@SUM(A1)")
    cw.open_from_flag(session, world.p(world.teacher), flag.id)
    from backoffice.casework.tasks import open_cases_for_new_flags
    from portal.orm import utcnow

    open_cases_for_new_flags(session, utcnow())
    session.commit()
    c = login(world.lead)
    resp = c.get("/staff/cases/register.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    body = resp.get_data(as_text=True)
    assert "'=HYPERLINK" in body and "'@SUM" in body
    assert "\n=" not in body and ",=" not in body and ",@" not in body


def test_meeting_pdf_summarises_the_listed_cases_in_japanese(app, session, world, flagged, login):
    from pypdf import PdfReader

    child, flag = flagged(world.cls, name="見守 花子")
    case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
    cw.assess(session, world.p(world.teacher), case.id, case.version,
              cw.AssessmentData(proposal="support_needed", child_voice="学校がこわい"))
    m = cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    cw.list_case(session, world.p(world.lead), m.id, case.id)
    session.commit()
    resp = login(world.lead).get(f"/staff/cases/meetings/{m.id}/summary.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(resp.data)).pages)
    assert "見守" in text and "学校がこわい" in text and "支援が必要" in text
    # The same summary for a lead who reads English.
    world.lead.locale = "en"
    session.commit()
    resp = login(world.lead).get(f"/staff/cases/meetings/{m.id}/summary.pdf")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(resp.data)).pages)
    assert "Case meeting summary" in text and "Support needed" in text and "学校がこわい" in text


def _listed_meeting(session, world, flagged, n, meeting=None):
    m = meeting or cw.create_meeting(session, world.p(world.lead), world.school.id, future(0))
    for _ in range(n):
        child, flag = flagged(world.cls)
        case = cw.open_from_flag(session, world.p(world.teacher), flag.id)
        cw.assess(session, world.p(world.teacher), case.id, case.version, cw.AssessmentData(proposal="support_needed"))
        cw.list_case(session, world.p(world.lead), m.id, case.id)
    session.commit()
    return m


def test_meeting_page_audits_every_child_in_a_constant_number_of_queries(session, world, flagged, login, count_queries):
    from portal.audit import service as audit
    from portal.audit.models import AuditEvent

    m = _listed_meeting(session, world, flagged, 2)
    url = f"/staff/cases/meetings/{m.id}"  # outside the counting: a request expires what the test holds
    c = login(world.lead)
    c.get(url)
    with count_queries() as small:
        assert c.get(url).status_code == 200
    _listed_meeting(session, world, flagged, 6, meeting=m)
    with count_queries() as big:
        html = c.get(url).get_data(as_text=True)
    assert small["n"] == big["n"], "\n".join(big["sql"])
    assert html.count('class="panel cw-item"') == 8
    reads = session.scalars(select(AuditEvent.child_id).where(
        AuditEvent.action == "child.read", AuditEvent.detail["view"].as_string() == "casework.meeting")).all()
    assert len(set(reads)) == 8
    assert audit.verify(session).ok


def test_meeting_pdf_uses_a_constant_number_of_queries(session, world, flagged, login, count_queries):
    m = _listed_meeting(session, world, flagged, 2)
    url = f"/staff/cases/meetings/{m.id}/summary.pdf"
    c = login(world.lead)
    c.get(url)
    with count_queries() as small:
        assert c.get(url).status_code == 200
    _listed_meeting(session, world, flagged, 6, meeting=m)
    with count_queries() as big:
        resp = c.get(url)
    assert resp.status_code == 200 and resp.data.startswith(b"%PDF")
    assert small["n"] == big["n"], "\n".join(big["sql"])


def _referred_cases(session, world, flagged, n):
    for _ in range(n):
        case = _case_with_plan(session, world, flagged)
        cw.refer(session, world.p(world.lead), case.id, "counsellor", receiver_id=world.counsellor.id)
    session.commit()


@pytest.mark.parametrize("who,url", [
    ("lead", "/staff/cases/"), ("lead", "/staff/cases/tasks"), ("lead", "/staff/cases/dashboard"),
    ("lead", "/staff/cases/meetings"), ("teacher", "/staff/cases/queue"), ("teacher", "/staff/cases/notices"),
    ("counsellor", "/staff/cases/referrals"), ("counsellor", "/staff/cases/tasks"), ("coordinator", "/staff/cases/municipality"),
    ("lead", "/staff/cases/register.csv"), ("coordinator", "/staff/cases/municipality.csv"),
    ("counsellor", "/staff/cases/"), ("counsellor", "/staff/cases/dashboard"), ("lead", "/staff/cases/notices"),
])
def test_pages_use_a_constant_number_of_queries(session, make, world, flagged, login, count_queries, who, url):
    staff = make.staff("coordinator") if who == "coordinator" else getattr(world, who)
    _referred_cases(session, world, flagged, 1)
    c = login(staff)
    c.get(url)
    with count_queries() as small:
        assert c.get(url).status_code == 200
    _referred_cases(session, world, flagged, 5)
    with count_queries() as big:
        assert c.get(url).status_code == 200
    assert small["n"] == big["n"], "\n".join(big["sql"])


def test_cli_remind_opens_cases_and_reminds(app, session, world, flagged):
    child, flag = flagged(world.cls, days_ago=30)
    session.commit()
    result = app.test_cli_runner().invoke(args=["casework", "remind"])
    assert result.exit_code == 0, result.output
    assert "cases opened: 1" in result.output and "people reminded: 1" in result.output


def _planned_case(session, world, flagged, make, *, extra: int):
    """A case with a plan and a referral; ``extra`` more actions, referrals and plan changes by more people."""
    case = _case_with_plan(session, world, flagged)
    lead = world.p(world.lead)
    owners = [world.teacher, world.counsellor, world.ssw, world.lead, world.other_teacher]
    extra_staff = [make.staff("teacher", schools=[world.school]) for _ in range(extra)]
    owners += extra_staff
    for i in range(extra):
        cw.save_plan(session, lead, case.id, case.version, cw.PlanData(
            review_date=future(30 + i), goals=[f"目標{j}" for j in range(i + 2)],
            actions=[cw.ActionData(f"取り組み{j}", owners[j % len(owners)].id, future(5 + j)) for j in range(i + 2)]))
    r = cw.refer(session, lead, case.id, "counsellor", receiver_id=world.counsellor.id)
    if extra:
        cw.respond(session, world.p(world.counsellor), r.id, accept=True, note="受けます")
        cw.finish_referral(session, world.p(world.counsellor), r.id)
        r2 = cw.refer(session, lead, case.id, "social_worker", receiver_id=world.ssw.id)
        cw.respond(session, world.p(world.ssw), r2.id, accept=False, note="今は難しい")
        cw.refer(session, lead, case.id, "counsellor", receiver_id=world.counsellor.id)
    session.commit()
    return case


@pytest.mark.parametrize("who", ["lead", "counsellor", "teacher"])
def test_case_page_uses_a_constant_number_of_queries(session, make, world, flagged, login, count_queries, who):
    small = _planned_case(session, world, flagged, make, extra=0)
    big = _planned_case(session, world, flagged, make, extra=5)
    c = login(getattr(world, who))
    c.get(f"/staff/cases/{small.id}")
    with count_queries() as few:
        assert c.get(f"/staff/cases/{small.id}").status_code == 200
    with count_queries() as many:
        html = c.get(f"/staff/cases/{big.id}").get_data(as_text=True)
    assert "今は難しい" in html and html.count("<li><span class=\"hint\">") > 10
    assert few["n"] == many["n"], "\n".join(many["sql"])
