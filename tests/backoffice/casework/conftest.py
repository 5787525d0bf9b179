"""Casework fixtures: a school with a teacher's class, a lead, a counsellor, flagged children."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import event

from backoffice.screening.models import Flag, FlagSource
from consent.testing import give_consent
from portal.auth import service as auth
from portal.orm import utcnow
from portal.people.models import Role


@dataclass
class World:
    school: object
    teacher: object
    cls: object
    lead: object
    counsellor: object
    ssw: object
    other_teacher: object
    other_cls: object

    def p(self, staff):
        return auth.principal_for(staff)


@pytest.fixture
def world(make, session):
    school = make.school()
    teacher, cls = make.teacher_with_class(3, school=school)
    other_teacher, other_cls = make.teacher_with_class(4, school=school)
    lead = make.staff(Role.school_lead, schools=[school], name="校長 先生")
    counsellor = make.staff(Role.counsellor, schools=[school], name="相談 員")
    ssw = make.staff(Role.social_worker, schools=[school], name="福祉 員")
    return World(school, teacher, cls, lead, counsellor, ssw, other_teacher, other_cls)


@pytest.fixture
def flagged(make, session):
    """A child of ``cls`` with consent and an open rule flag."""

    def _flagged(cls, *, urgency=2, purposes=("data_linkage", "wellbeing_survey"), name=None, days_ago=0,
                 needs_linkage=True, needs_survey=False):
        child = make.child(cls, **({"name": name} if name else {}))
        make.guardian(child)
        give_consent(session, child, *purposes)
        flag = Flag(child_id=child.id, source=FlagSource.rule, reason_key="rule:absence", rule_code="absence",
                    reasons=[{"indicator": "absence_days_3m", "fact": 12, "params": {"op": ">=", "value": 10}}],
                    urgency=urgency, created_at=utcnow() - timedelta(days=days_ago),
                    needs_linkage=needs_linkage, needs_survey=needs_survey)
        session.add(flag)
        session.flush()
        return child, flag

    return _flagged


@pytest.fixture
def today():
    from backoffice.casework.service import tokyo_today

    return tokyo_today()


@pytest.fixture
def count_queries(db):
    """Context manager counting the SQL statements run inside it."""
    from contextlib import contextmanager

    @contextmanager
    def _count():
        box = {"n": 0, "sql": []}

        def _on(conn, cursor, statement, *_a, **_k):
            box["n"] += 1
            box["sql"].append(statement[:120])

        engine = db.engine
        event.listen(engine, "before_cursor_execute", _on)
        try:
            yield box
        finally:
            event.remove(engine, "before_cursor_execute", _on)

    return _count


def future(days: int = 30) -> date:
    from backoffice.casework.service import tokyo_today

    return tokyo_today() + timedelta(days=days)
