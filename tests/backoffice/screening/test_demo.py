"""The demo: a new user sees flags with reasons and an evaluation page with numbers."""

from __future__ import annotations

from sqlalchemy import select

from backoffice.screening import evaluation as ev
from backoffice.screening import model as ml
from backoffice.screening import service
from backoffice.screening.models import Flag, FlagStatus, RuleSetStatus
from portal.auth.service import principal_for
from portal.people.models import Staff


def test_demo_has_an_approved_rule_set_flags_with_reasons_and_evaluation_figures(app, session):
    from portal import demo

    ctx = demo.load(session, app.config["SECRET_KEY"], children_per_class=4)
    session.flush()
    rs = service.active_rule_set(session)
    assert rs is not None and rs.status == RuleSetStatus.active
    assert rs.author_staff_id != rs.approved_by_staff_id  # four eyes, even in the demo

    teacher = principal_for(session.scalar(select(Staff).where(Staff.id == ctx.staff["teacher"].id)))
    queue = service.queue(session, teacher)
    assert queue, "the demo teacher has children to look at"
    for entry in queue:
        for flag in entry["flags"]:
            ja, en = service.describe_reasons(flag, "ja"), service.describe_reasons(flag, "en")
            assert ja and en and ja != en

    # every past decision carries the facts that fired it, in words
    decided = session.scalars(select(Flag).where(Flag.status == FlagStatus.resolved, Flag.outcome.is_not(None))).all()
    assert len(decided) >= 60
    assert all(service.describe_reasons(f, "en") for f in decided)

    stats = ev.rule_stats(session)
    assert any(s["decided"] and s["confirmed_share"] is not None and s["median_days_to_decision"] is not None
               for s in stats)
    assert {"manual"} < {s["rule"] for s in stats}
    m = ml.latest_model(session)
    assert m is not None and m.card["auc"] is not None and m.card["by_sex"]
    assert m.enabled == m.beats_baselines  # on only because it beat both baselines
