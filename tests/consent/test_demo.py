from __future__ import annotations

from sqlalchemy import func, select

from consent.gate import consented_child_ids
from portal import demo
from portal.people.models import Guardian, GuardianChild


def test_demo_gives_realistic_consent_and_the_demo_family_is_consented(app, session):
    ctx = demo.load(session, app.config["SECRET_KEY"], children_per_class=6)
    n = len(ctx.children)
    linked = session.scalar(select(func.count()).select_from(consented_child_ids("data_linkage").subquery()))
    assert 0.4 * n < linked < 0.95 * n
    fam = session.scalar(select(Guardian).where(Guardian.email == "family@demo.mimamori.invalid"))
    kids = select(GuardianChild.child_id).where(GuardianChild.guardian_id == fam.id)
    for code in ("data_linkage", "wellbeing_survey"):
        gate = consented_child_ids(code).subquery()
        ok = session.scalars(select(gate.c.child_id).where(gate.c.child_id.in_(kids))).all()
        assert ok, code
