from __future__ import annotations

from sqlalchemy import func, select

from surveys.models import HelpAlert, SignalKind, SurveyResponse, SurveySignal


def test_demo_has_check_ins_low_mood_streaks_and_one_open_help_request(app, session):
    from portal import demo

    demo.load(session, app.config["SECRET_KEY"], children_per_class=4)
    session.flush()
    assert session.scalar(select(func.count()).select_from(SurveyResponse)) > 20
    assert session.scalar(select(func.count()).select_from(SurveySignal).where(SurveySignal.kind == SignalKind.low_mood_streak)) >= 1
    assert session.scalar(select(func.count()).select_from(HelpAlert).where(HelpAlert.acknowledged_at.is_(None))) == 1
