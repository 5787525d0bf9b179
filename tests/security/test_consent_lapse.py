"""What consent events delete, and when.

* A lapse (a material new version that lapses earlier consent, or a child who
  now decides too and has not consented) takes the child out of the gate at
  once; what is held for the purpose is kept, unused, for the documented window
  (``consent.models.LAPSE_WINDOW_DAYS``, 30 days), then purged by the scheduled
  job, and kept if the family consents again in time.
* A teacher's own concern (a manual flag) is not consent-based: consent events
  never delete it; only the consented evidence kept with it goes.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from backoffice.screening import service as screening
from backoffice.screening.indicators import INDICATORS, LINKAGE, SURVEYS
from backoffice.screening.models import Flag
from consent import service
from consent.gate import consented_child_ids, is_consented
from consent.models import LAPSE_WINDOW_DAYS, OldConsent, PendingPurge, PurgeCause, PurgeStatus
from consent.testing import give_consent
from portal.audit.models import AuditEvent
from portal.auth.principal import Principal
from portal.orm import utcnow
from portal.people.models import Role
from portal.scheduler import run_job
from surveys import service as surveys
from surveys.models import AlertReason, HelpAlert, SignalKind, SurveySignal

PURPOSE = "wellbeing_survey"


def _steward(make) -> Principal:
    return Principal(kind="staff", id=make.staff(Role.data_steward).id, role=Role.data_steward.value)


def _child_with_survey_data(session, make, grade=5):
    teacher, cls = make.teacher_with_class(grade=grade)
    child = make.child(cls)
    make.guardian(child)
    give_consent(session, child, PURPOSE)
    session.add(SurveySignal(child_id=child.id, kind=SignalKind.low_mood_streak, value=3.0, observed_at=utcnow()))
    session.add(HelpAlert(child_id=child.id, school_id=cls.school_id, class_id=cls.id, reason=AlertReason.talk_request))
    session.flush()
    return child


def _signals(session, child) -> int:
    return session.scalar(select(func.count(SurveySignal.id)).where(SurveySignal.child_id == child.id))


def _publish_lapsing(session, make):
    p = service.purpose_by_code(session, PURPOSE)
    service.publish_version(session, _steward(make), p, {"ja": ("題", "本文 改定", ""), "en": ("Title", "Revised", "")},
                            material=True, old_consent=OldConsent.lapses)
    return p


def test_lapsed_consent_data_is_unused_during_the_window_and_purged_after_it(app, session, make):
    child = _child_with_survey_data(session, make)
    _publish_lapsing(session, make)
    session.commit()

    # out of the gate at once: the screening read of signals no longer returns the child
    assert not is_consented(session, child.id, PURPOSE)
    assert child.id not in set(session.scalars(consented_child_ids(PURPOSE)))
    assert child.id not in {r.child_id for r in session.execute(surveys.signals_for_screening())}
    # held, unused, for the window
    pending = session.scalar(select(PendingPurge).where(PendingPurge.child_id == child.id))
    assert pending.cause == PurgeCause.lapse and pending.status == PurgeStatus.pending
    assert abs((pending.due_at - utcnow()) - timedelta(days=LAPSE_WINDOW_DAYS)) < timedelta(minutes=5)
    assert run_job("consent.purges", utcnow() + timedelta(days=LAPSE_WINDOW_DAYS - 1), app=app)
    session.expire_all()
    assert _signals(session, child) == 1
    # purged after it, by the scheduled job; the child's request for help stays
    assert run_job("consent.purges", utcnow() + timedelta(days=LAPSE_WINDOW_DAYS, hours=1), app=app)
    session.expire_all()
    assert _signals(session, child) == 0
    assert session.scalar(select(HelpAlert).where(HelpAlert.child_id == child.id)) is not None
    row = session.scalar(select(AuditEvent).where(AuditEvent.action == "consent.purge", AuditEvent.child_id == child.id))
    assert row.detail["cause"] == "lapse" and row.detail["counts"]["survey_signals"] == 1


def test_a_family_that_consents_again_within_the_lapse_window_keeps_its_data(app, session, make):
    child = _child_with_survey_data(session, make)
    _publish_lapsing(session, make)
    give_consent(session, child, PURPOSE)  # the new text, within the window
    session.commit()
    assert is_consented(session, child.id, PURPOSE)
    assert session.scalar(select(PendingPurge.status).where(PendingPurge.child_id == child.id)) == PurgeStatus.cancelled
    assert run_job("consent.purges", utcnow() + timedelta(days=LAPSE_WINDOW_DAYS + 1), app=app)
    session.expire_all()
    assert _signals(session, child) == 1


def test_a_child_who_leaves_the_gate_by_growing_up_is_purged_after_the_window_too(app, session, make):
    """Grade 7 needs the child's own consent: without it the child is out of the gate, and the data goes in time."""
    child = _child_with_survey_data(session, make, grade=6)
    from portal.people.models import Enrolment, SchoolClass

    cls = session.scalar(select(SchoolClass).join(Enrolment).where(Enrolment.child_id == child.id))
    cls.grade = 7  # the new school year
    session.commit()
    assert not is_consented(session, child.id, PURPOSE)
    now = utcnow()
    assert run_job("consent.purges", now, app=app)  # notices the exit and schedules the purge
    session.expire_all()
    pending = session.scalar(select(PendingPurge).where(PendingPurge.child_id == child.id))
    assert pending.cause == PurgeCause.lapse and _signals(session, child) == 1
    assert run_job("consent.purges", now + timedelta(days=LAPSE_WINDOW_DAYS, hours=1), app=app)
    session.expire_all()
    assert _signals(session, child) == 0
    # once purged, nothing more is scheduled for it
    assert run_job("consent.purges", now + timedelta(days=2 * LAPSE_WINDOW_DAYS), app=app)
    assert session.scalar(select(func.count(PendingPurge.id)).where(PendingPurge.child_id == child.id)) == 1


def test_a_teachers_own_concern_survives_consent_events_without_the_consented_evidence(session, make):
    teacher, cls = make.teacher_with_class(grade=5)
    child = make.child(cls)
    make.guardian(child)
    give_consent(session, child, LINKAGE, SURVEYS)
    me = Principal(kind="staff", id=teacher.id, role=Role.teacher.value)
    flag = screening.raise_manual_flag(session, me, child.id, "Comes to school hungry.")
    survey_codes = {c for c, i in INDICATORS.items() if i.purpose == SURVEYS}
    linkage_codes = {c for c, i in INDICATORS.items() if i.purpose == LINKAGE}
    assert survey_codes <= set(flag.features) and linkage_codes <= set(flag.features)
    flag.model_score, flag.model_factors = 0.8, [{"indicator": "low_mood"}]
    session.flush()
    fid = flag.id

    give_consent(session, child, SURVEYS, withdraw=True)
    session.expire_all()
    kept = session.get(Flag, fid)
    assert kept is not None and kept.manual_text == "Comes to school hungry."
    assert not (survey_codes & set(kept.features)) and linkage_codes <= set(kept.features)
    assert kept.model_score is None and kept.model_factors is None

    give_consent(session, child, LINKAGE, withdraw=True)
    session.expire_all()
    kept = session.get(Flag, fid)
    assert kept is not None and kept.manual_text == "Comes to school hungry." and kept.features == {}


def test_the_lapse_window_is_written_on_the_purpose_pages_in_both_languages(app, session, make, login):
    from consent.testing import ensure_purposes

    ensure_purposes(session)
    steward = make.staff(Role.data_steward)
    session.commit()
    for locale, words in (("ja", ("失効", f"{LAPSE_WINDOW_DAYS}日間")), ("en", ("lapses", f"{LAPSE_WINDOW_DAYS} days"))):
        public = app.test_client()
        with public.session_transaction() as sess:
            sess["locale"] = locale
        html = public.get("/consent/purposes").get_data(as_text=True)
        assert all(w in html for w in words), (locale, words)
        steward.locale = locale
        session.commit()
        st = login(steward, app.test_client())
        for url in ("/staff/consent/", "/staff/consent/purposes/wellbeing_survey/publish"):
            page = st.get(url).get_data(as_text=True)
            assert str(LAPSE_WINDOW_DAYS) in page and words[0][:2] in page, (locale, url)


def test_a_teacher_can_raise_a_concern_about_a_child_whose_family_never_consented(session, make):
    """A teacher's own concern rests on the school's duty of care: no consent needed, no evidence kept."""
    teacher, cls = make.teacher_with_class(grade=5)
    child = make.child(cls)
    make.guardian(child)
    assert not is_consented(session, child.id, LINKAGE) and not is_consented(session, child.id, SURVEYS)
    me = Principal(kind="staff", id=teacher.id, role=Role.teacher.value)
    flag = screening.raise_manual_flag(session, me, child.id, "Comes to school hungry.")
    session.flush()
    assert flag.id is not None and flag.manual_text == "Comes to school hungry."
    assert flag.features == {}  # nothing consent-based is stored beside it
