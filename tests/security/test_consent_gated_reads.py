"""Consent-based data is shown only through the consent gate: every GET route, every staff role.

The test does not pick pages. Five children sit in one class, each with a
sentinel (a unique string or number) in every consent-based table: today's
check-in (status, score, free text, the half-done progress), a signal, a
linked administrative record (kept columns and the encrypted ones) and a
row proposed for the child in the review queue, a rule flag resting on
linked records and one resting on linked records and check-ins (the facts
of their reasons, their indicator values), the indicator values recorded
with a teacher's own concern, a case opened from the second flag and a case
meeting listing every case. The children are:

* ``withdrawn``: the guardian withdrew every purpose;
* ``lapsed``: a material new version of every purpose was published whose
  earlier consent *lapses at once*, and nobody consented again;
* ``never``: nobody ever consented;
* ``survey_lapsed``: consented again to data linkage only, so its check-ins
  and the flag whose reasons rest on them are hidden, its linked records not;
* ``consented``: consented again on the new versions.

Then every GET route in the URL map is asked for, for every staff role that
may use it, by someone of that role in scope (the homeroom teacher, the
school's lead, counsellor and social worker, the data steward and the
municipality roles), with every path argument built for each of the four
children through the object builders of ``tests/security/test_idor.py``.
HTML, JSON, CSV, PDF (decoded with pypdf) and zip (each member) are read.
A sentinel of one of the first three children anywhere fails the test; the
consented child's sentinels must appear (so the test can fail), and so must
what is *not* consent-based: each child's help request and each teacher's
own concern, whatever the consent.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from consent.gate import is_consented
from consent.testing import give_consent
from portal.auth.access import STAFF_ROLES, roles_for
from portal.auth.principal import SYSTEM
from portal.orm import utcnow
from tests.security.routewalk import text_of
from tests.security.test_idor import INSIDERS, OBJECT_ROUTES, PURPOSES, build_world
from tests.test_access_matrix import _url, routes

STATES = ("withdrawn", "lapsed", "never", "survey_lapsed", "consented")
HIDDEN = STATES[:3]  # out of the gate for every purpose
SURVEY_KINDS = {"score", "free_text", "progress", "signal", "survey_flag_fact"}
WHO = {**INSIDERS, "analyst": "analyst", "administrator": "administrator"}

# Sentinels that a page shows today when it shows the table at all: the
# consented child's must appear somewhere, or the walk proves nothing.
MUST_APPEAR = {
    "consented": ("score", "free_text", "record", "review", "flag_fact", "survey_flag_fact"),
    "survey_lapsed": ("record", "review", "flag_fact"),  # the gate is per purpose, not all or nothing
}

# Routes whose answer is not consent-based processing, each with its reason.
NOT_GATED = {
    "consent.staff_disclosure": "the disclosure (開示) answers the family's right of access to everything held, "
                                "whatever the consent (APPI art. 33 / 76)",
}
# Query strings that make a list page show the class or everything.
EXTRA_QUERIES = {
    "surveys.today": lambda w: [f"class_id={w.cls_v.id}"],
    "surveys.alerts": lambda w: ["all=1"],
    "consent.staff_requests": lambda w: ["show=all"],
    "casework.register": lambda w: [f"school={w.school_b.id}"],
    "casework.register_csv": lambda w: [f"school={w.school_b.id}"],
}


def _sentinels(state: str, n: int) -> dict[str, str]:
    """Unique values for one child: strings where the column takes text, numbers where it takes numbers."""
    tag = state.upper()
    return {
        "score": str(730100 + n),
        "free_text": f"FREETEXT{tag}Q7",
        "progress": f"PROGRESS{tag}Q7",
        "signal": str(740100 + n),
        "record": f"MOVEREASON{tag}Q7",
        "record_secret": f"SECRET{tag}Q7",
        "review": f"REVIEWNAME{tag}Q7",
        "flag_fact": str(750100 + n),
        "survey_flag_fact": str(770100 + n),
        "feature": str(760100 + n),
    }


def _publish_lapsing_versions(session):
    """A material new version of every purpose whose earlier consent lapses at once."""
    from consent import service
    from consent.models import OldConsent

    for code in PURPOSES:
        purpose = service.purpose_by_code(session, code)
        service.publish_version(
            session, SYSTEM, purpose, {"ja": (f"{code} 第2版", "重要な変更があります。", ""), "en": (code, "Material change.", "")},
            material=True, old_consent=OldConsent.lapses,
        )
    session.flush()


def _plant(session, w, child, values: dict[str, str], schedule, batch, today):
    """Every consent-based table gets this child's sentinel; returns the case opened from the rule flag."""
    from backoffice.casework import service as casework
    from backoffice.casework.models import CaseSource
    from backoffice.linkage.models import LinkedRecord, ReviewCandidate, ReviewItem
    from backoffice.screening.models import Flag, FlagSource
    from surveys.models import (
        AlertReason,
        AssignmentStatus,
        HelpAlert,
        SignalKind,
        SurveyAssignment,
        SurveyResponse,
        SurveySignal,
    )

    now = utcnow()
    a = SurveyAssignment(schedule_id=schedule.id, child_id=child.id, instrument_code="mood", instrument_version="1",
                         respondent="student", for_date=today, opens_at=now - timedelta(hours=1),
                         closes_at=now + timedelta(hours=2), status=AssignmentStatus.submitted,
                         progress=json.dumps({"note": values["progress"]}))
    session.add(a)
    session.flush()
    r = SurveyResponse(assignment_id=a.id, child_id=child.id, instrument_code="mood", instrument_version="1",
                       respondent_kind="student", respondent_id=child.id, submitted_at=now,
                       answers={"weather": "1"}, free_text=json.dumps({"note": values["free_text"]}),
                       score=float(values["score"]), low=True)
    session.add(r)
    session.flush()
    session.add(SurveySignal(child_id=child.id, kind=SignalKind.low_mood_streak, response_id=r.id,
                             value=float(values["signal"]), observed_at=now))
    # Not consent-based: a help request reaches an adult whatever the consent.
    session.add(HelpAlert(child_id=child.id, school_id=w.school_b.id, class_id=w.cls_v.id,
                          reason=AlertReason.talk_request, created_at=now))
    session.add(LinkedRecord(batch_id=batch.id, source="juki", source_row=child.id, row_key=f"sentinel-{child.id}",
                             child_id=child.id, method="atena_no", status="linked", record_date=today,
                             expires_on=today + timedelta(days=365),
                             data={"move_reason": values["record"], "moved_on": today.isoformat()},
                             secret=values["record_secret"]))
    # A row of an administrative file proposed for this child, waiting for the data steward.
    proposed = LinkedRecord(batch_id=batch.id, source="juki", source_row=100000 + child.id, row_key=f"review-{child.id}",
                            child_id=child.id, method="probabilistic", score=0.9, status="review",
                            expires_on=today + timedelta(days=365), data={})
    session.add(proposed)
    session.flush()
    item = ReviewItem(record_id=proposed.id, source="juki", match_fields=json.dumps({"name": values["review"]}))
    session.add(item)
    session.flush()
    session.add(ReviewCandidate(item_id=item.id, child_id=child.id, score=0.9, agreement={"kanji": "close"}))
    rule_flag = Flag(child_id=child.id, source=FlagSource.rule, rule_code="absence", reason_key="rule:absence",
                     reasons=[{"indicator": "absence_days_3m", "fact": int(values["flag_fact"]),
                               "params": {"op": ">=", "value": 10}}],
                     features={"absence_days_3m": int(values["feature"])}, needs_linkage=True, needs_survey=False,
                     urgency=3, created_at=now, last_seen_at=now)
    # Reasons resting on linked records and check-ins (absence and low mood).
    survey_flag = Flag(child_id=child.id, source=FlagSource.rule, rule_code="absence_mood", reason_key="rule:absence_mood",
                       reasons=[{"indicator": "absence_days_3m", "fact": int(values["survey_flag_fact"]),
                                 "params": {"op": ">=", "value": 5}},
                                {"indicator": "low_mood", "fact": True, "params": {"op": "is", "value": True}}],
                       features={"absence_days_3m": int(values["feature"])}, needs_linkage=True, needs_survey=True,
                       urgency=3, created_at=now, last_seen_at=now)
    # Not consent-based: a teacher's own concern; only the indicator values kept with it are.
    manual_flag = Flag(child_id=child.id, source=FlagSource.manual, reason_key=f"manual:sentinel-{child.id}",
                       reasons=[{"indicator": "manual", "fact": True, "params": {}}],
                       manual_text=f"CONCERN{child.id}Q7", features={"absence_days_3m": int(values["feature"])},
                       urgency=2, created_at=now, last_seen_at=now, raised_by_staff_id=w.teacher_v.id)
    session.add_all([rule_flag, survey_flag, manual_flag])
    session.flush()
    case = casework.open_case(session, SYSTEM, child.id, source=CaseSource.flag, flag_id=survey_flag.id, urgency=3,
                              uses_linkage=True, uses_survey=True)
    return {"case": case, "assignment:mood": a, "review_item": item}


def _world(make, session):
    from backoffice.casework.models import Meeting, MeetingItem
    from backoffice.linkage.models import ImportBatch
    from surveys.scheduling import TOKYO
    from tests.surveys.conftest import SurveyFactory

    w = build_world(make, session)  # the victim, consented to every purpose, is the "consented" child
    kids = {"consented": w.victim}
    for state in STATES[:-1]:
        kids[state] = make.child(w.cls_v, name=f"状態 {state}", name_kana="ジョウタイ")
        make.guardian(kids[state])
    give_consent(session, kids["withdrawn"], *PURPOSES)
    give_consent(session, kids["lapsed"], *PURPOSES)
    give_consent(session, kids["survey_lapsed"], *PURPOSES)
    give_consent(session, kids["withdrawn"], *PURPOSES, withdraw=True)
    _publish_lapsing_versions(session)
    give_consent(session, kids["consented"], *PURPOSES)
    give_consent(session, kids["survey_lapsed"], "data_linkage", "share_with_partners")
    for state, child in kids.items():
        for code in ("data_linkage", "wellbeing_survey"):
            expected = state == "consented" or (state == "survey_lapsed" and code == "data_linkage")
            assert is_consented(session, child.id, code) == expected, (state, code)

    today = utcnow().astimezone(TOKYO).date()
    schedule = SurveyFactory(session, None).schedule(w.cls_v, "mood", starts_on=today - timedelta(days=30),
                                                     ends_on=today + timedelta(days=30))
    batch = ImportBatch(source="juki", filename="sentinel.csv", file_sha256="0" * 64, actor_kind="system")
    session.add(batch)
    session.flush()
    values = {state: _sentinels(state, n) for n, state in enumerate(STATES)}
    built = {state: _plant(session, w, kids[state], values[state], schedule, batch, today) for state in STATES}
    meeting = Meeting(school_id=w.school_b.id, held_on=date.today() + timedelta(days=3), created_by_id=w.lead_b.id)
    session.add(meeting)
    session.flush()
    for state in STATES:
        session.add(MeetingItem(meeting_id=meeting.id, case_id=built[state]["case"].id, child_id=kids[state].id))
    session.flush()
    # The IDOR builders make each route's object for one child (the world's "victim").
    worlds = {state: replace(w, victim=kids[state], built={**built[state], "meeting": meeting, "schedule:mood": schedule})
              for state in STATES}
    return w, kids, values, worlds, batch, meeting


# -- reading whatever a route answers --------------------------------------------------------


def _normal(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _urls(app, session, w, worlds, batch, meeting) -> dict[str, list[str]]:
    """Every GET route's URLs: one per child for a route naming a child's object."""
    from consent.models import DataRequest

    out: dict[str, list[str]] = {}
    for rule in routes(app):
        ep = rule.endpoint
        if "GET" not in rule.methods or not set(roles_for(app.view_functions[ep]) or ()) & set(STAFF_ROLES):
            continue
        if not rule.arguments:
            urls = [rule.rule] + [f"{rule.rule}?{q}" for q in EXTRA_QUERIES.get(ep, lambda w: [])(w)]
        elif ep in OBJECT_ROUTES:
            urls = [rule.build(OBJECT_ROUTES[ep].values(worlds[s], session), append_unknown=False)[1] for s in STATES]
        elif ep == "linkage.review_item":
            urls = [rule.build({"item_id": worlds[s].built["review_item"].id}, append_unknown=False)[1] for s in STATES]
        elif ep == "linkage.batch":
            urls = [rule.build({"batch_id": batch.id}, append_unknown=False)[1]]
        elif ep in ("consent.staff_request", "consent.staff_disclosure"):
            urls = []
            for s in STATES:
                from tests.security.test_idor import _data_request

                req: DataRequest = _data_request(worlds[s], session)
                values = {"request_id": req.id, "fmt": "json"}
                urls.append(rule.build({k: v for k, v in values.items() if k in rule.arguments}, append_unknown=False)[1])
        elif ep in ("consent.staff_publish", "consent.staff_purpose_edit", "consent.student_purpose"):
            urls = [rule.build({"code": code}, append_unknown=False)[1] for code in ("data_linkage", "wellbeing_survey")]
        else:
            urls = [_url(rule)]  # an id that does not exist: the route must still answer without leaking
        out.setdefault(ep, []).extend(urls)
    return out


@pytest.fixture
def gated_world(make, session):
    return _world(make, session)


def test_consent_based_data_is_shown_only_through_the_gate(app, session, gated_world):
    from tests.conftest import sign_in_as

    w, kids, values, worlds, batch, meeting = gated_world
    urls = _urls(app, session, w, worlds, batch, meeting)
    session.commit()

    leaks: list[str] = []
    errors: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    bodies_by_role: dict[str, list[str]] = {}
    asked = 0
    for role in STAFF_ROLES:
        who = getattr(w, WHO[role])
        c = app.test_client()
        sign_in_as(c, who)
        for ep, ep_urls in sorted(urls.items()):
            if role not in (roles_for(app.view_functions[ep]) or ()):
                continue
            for url in ep_urls:
                resp = c.get(url)
                asked += 1
                if resp.status_code >= 500:
                    errors.append(f"GET {url} as {role}: {resp.status_code}")
                text = "" if resp.status_code >= 300 else text_of(resp)
                resp.close()
                session.rollback()
                body = _normal(text)
                bodies_by_role.setdefault(role, []).append(body)
                for state in STATES:
                    for kind, value in values[state].items():
                        if value not in body:
                            continue
                        seen.setdefault((state, kind), f"{url} as {role}")
                        hidden = state in HIDDEN or (state == "survey_lapsed" and kind in SURVEY_KINDS)
                        if hidden and ep not in NOT_GATED:
                            leaks.append(f"GET {url} as {role}: the {state} child's {kind} ({value})")
    assert asked > 100
    assert not errors, "\n".join(errors)
    assert not leaks, "consent-based data shown outside the consent gate:\n" + "\n".join(sorted(set(leaks)))
    missing = [(state, kind) for state, kinds in MUST_APPEAR.items() for kind in kinds if (state, kind) not in seen]
    assert not missing, f"{missing} appear on no page: the walk proves nothing for them"

    # What is not consent-based stays visible whatever the consent.
    everything = "".join(b for bodies in bodies_by_role.values() for b in bodies)
    for state, child in kids.items():
        assert f"CONCERN{child.id}Q7" in everything, f"the teacher's own concern about the {state} child is hidden"
    counsellor = app.test_client()
    sign_in_as(counsellor, w.counsellor_b)
    alerts = counsellor.get("/staff/alerts?all=1").get_data(as_text=True)
    for state, child in kids.items():
        assert child.name in alerts, f"the {state} child's request for help is not on the counsellor's list"


def test_the_sentinels_are_really_held(session, gated_world):
    """The walk above is meaningful only if the rows are there: the gate, not a purge, hides them."""
    from backoffice.linkage.models import LinkedRecord
    from backoffice.screening.models import Flag
    from surveys.models import SurveyResponse

    _w, kids, _values, _worlds, _batch, _meeting = gated_world
    for model in (SurveyResponse, LinkedRecord, Flag):
        held = set(session.scalars(select(model.child_id).where(model.child_id.in_([k.id for k in kids.values()]))))
        assert held == {k.id for k in kids.values()}, model.__name__


def test_a_teachers_concern_outside_the_gate_is_shown_without_its_consent_based_evidence(session, make):
    """A manual flag stays visible whatever the consent; its indicator values and model score do not."""
    from backoffice.screening import reads, service
    from backoffice.screening.models import Flag, FlagSource
    from portal.auth.principal import Principal

    teacher, klass = make.teacher_with_class(grade=5)
    child = make.child(klass)
    make.guardian(child)
    give_consent(session, child, "data_linkage", "wellbeing_survey")
    flag = service.raise_manual_flag(session, SYSTEM, child.id, "朝食をとっていない様子")
    flag.features, flag.model_score, flag.model_factors = {"absence_days_3m": 9}, 0.8, [{"indicator": "absence_days_3m"}]
    session.flush()
    me = Principal(kind="staff", id=teacher.id, role="teacher")
    [shown] = service.flags_for_child(session, me, child.id)
    assert shown.model_score == 0.8 and shown.features  # consented: the evidence is there

    give_consent(session, child, "data_linkage", "wellbeing_survey", withdraw=True)
    session.add(Flag(child_id=child.id, source=FlagSource.manual, reason_key="manual:kept", manual_text="見守り続ける",
                     reasons=[{"indicator": "manual", "fact": True, "params": {}}], features={"absence_days_3m": 9},
                     model_score=0.8, model_factors=[{"indicator": "absence_days_3m"}], created_at=utcnow()))
    session.commit()
    flags = service.flags_for_child(session, me, child.id)
    assert "見守り続ける" in [f.manual_text for f in flags]  # (the purge decides about the earlier one, not the page)
    for f in flags:
        assert f.model_score is None and f.features == {} and f.model_factors is None
        assert service.describe_factors(f, "ja") == []
    session.expire_all()
    # Nothing was written: the stored row keeps what the purge (not the page) decides about.
    assert session.scalar(select(Flag.model_score).where(Flag.reason_key == "manual:kept")) == 0.8
    assert [e["child"].id for e in service.queue(session, me)] == [child.id]
    assert reads.by_id(session, flags[0].id).model_score is None


def test_the_linkage_export_holds_only_children_in_the_gate(session, gated_world):
    """The command-line export of linked records (not a route, so not in the walk) goes through the gate too."""
    from backoffice.linkage.importer.service import export_rows

    _w, kids, _values, _worlds, _batch, _meeting = gated_world
    exported = {row[3] for row in export_rows(session)}
    assert kids["consented"].student_no in exported
    for state in HIDDEN:
        assert kids[state].student_no not in exported, f"the {state} child's linked records are exported"
