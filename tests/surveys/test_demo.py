from __future__ import annotations

import time

from sqlalchemy import func, select

from consent.gate import consented_child_ids
from portal.people.models import Enrolment, SchoolClass
from surveys.models import HelpAlert, SignalKind, SurveyAssignment, SurveyResponse, SurveySignal


def test_demo_has_history_for_every_class_streaks_and_one_open_help_request(app, session):
    from portal import demo

    t = time.perf_counter()
    demo.load(session, app.config["SECRET_KEY"], children_per_class=4)
    session.flush()
    assert time.perf_counter() - t < 120
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) > 20
    # every class with a consented child has check-in history, and only consented children have any
    consented = set(session.scalars(consented_child_ids("wellbeing_survey")))
    with_history = set(session.scalars(select(SurveyResponse.child_id).distinct()))
    assert with_history and with_history <= consented
    classes_with_consent = set(
        session.scalars(select(Enrolment.class_id).where(Enrolment.child_id.in_(consented)).distinct())
    )
    classes_with_history = set(
        session.scalars(select(Enrolment.class_id).where(Enrolment.child_id.in_(with_history)).distinct())
    )
    assert classes_with_history == classes_with_consent
    assert len(classes_with_history) > 2
    # junior-high students also have weekly WHO-5 history
    jh = select(Enrolment.child_id).join(SchoolClass).where(SchoolClass.grade >= 7)
    assert session.scalar(
        select(func.count()).select_from(SurveyResponse).where(SurveyResponse.instrument_code == "who5", SurveyResponse.child_id.in_(jh))
    ) > 0
    # past assignments are closed (answered or missed); each response belongs to its own child's assignment
    assert session.scalar(
        select(func.count()).select_from(SurveyResponse).join(SurveyAssignment, SurveyAssignment.id == SurveyResponse.assignment_id)
        .where(SurveyAssignment.child_id != SurveyResponse.child_id)
    ) == 0
    assert session.scalar(select(func.count()).select_from(SurveySignal).where(SurveySignal.kind == SignalKind.low_mood_streak)) >= 2
    assert session.scalar(select(func.count()).select_from(HelpAlert).where(HelpAlert.acknowledged_at.is_(None))) == 1
