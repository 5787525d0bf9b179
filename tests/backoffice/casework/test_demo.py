from __future__ import annotations

from sqlalchemy import func, select

from backoffice.casework import reports
from backoffice.casework.models import Case
from portal.auth.service import principal_for
from portal.people.models import Staff


def test_demo_has_cases_at_every_stage_for_the_demo_school(app, session):
    from portal import demo

    ctx = demo.load(session, app.config["SECRET_KEY"], children_per_class=4)
    session.flush()
    statuses = dict(session.execute(select(Case.status, func.count()).group_by(Case.status)).all())
    assert {s.value for s in statuses} >= {"flagged", "assessed", "decided", "plan_active", "under_review", "closed"}
    lead = principal_for(session.scalar(select(Staff).where(Staff.id == ctx.staff["lead"].id)))
    d = reports.dashboard(session, lead)
    assert d.open_cases >= 8 and d.overdue_tasks >= 1 and d.median_days_to_decision is not None
