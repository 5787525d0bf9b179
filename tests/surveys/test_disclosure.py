"""A family's disclosure download (開示) holds the check-ins and the family questionnaire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

from consent import hooks, rights
from consent.testing import give_consent
from portal.auth.principal import SYSTEM
from portal.auth.service import principal_for
from surveys import scheduling, service
from surveys.models import Frequency
from tests.surveys.conftest import MONDAY_0830, MOOD_OK

TERM_START = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)


def test_disclosure_has_check_ins_and_the_family_questionnaire_but_not_the_childs_request_for_help(session, sv, make):
    env = sv.setup(grade=5)
    child = env["child"]
    family = sv.schedule(env["cls"], "family", frequency=Frequency.termly, start=time(0, 0), end=time(23, 0), days_open=14)
    a = service.open_assignments(session, principal_for(child), MONDAY_0830 + timedelta(minutes=1))[0][0]
    service.submit(session, principal_for(child), a.id, {**MOOD_OK, "weather": "1", "talk": "1", "note": "ないしょ"},
                   MONDAY_0830 + timedelta(minutes=2))
    scheduling.open_due(session, TERM_START)
    guardian = make.guardian(child, locale="en")
    fa = next(x for x, _c in service.open_assignments(session, principal_for(guardian), TERM_START) if x.schedule_id == family.id)
    service.submit(session, principal_for(guardian), fa.id, {"household": "2", "worries": ["1"]}, TERM_START)

    keys = {s.key for s in hooks.disclosure_sections()}
    assert {"surveys.checkins", "surveys.family"} <= keys
    out = rights.disclosure(session, SYSTEM, child.id)
    json.dumps(out)  # plain JSON values only
    sections = {s["key"]: s["rows"] for s in out["sections"]}
    checkins = sections["surveys.checkins"]
    answers = [r for r in checkins if r["record"] == "answer"]
    assert len(answers) == 1 and answers[0]["instrument"] == "mood"
    assert json.loads(answers[0]["answers"])["weather"] == 1
    # the child's note to the counsellor and the request for help are not handed to the family,
    # and nothing in the row says that they exist
    assert answers[0]["free_text"] is None and "talk" not in json.loads(answers[0]["answers"])
    assert "ないしょ" not in json.dumps(out, ensure_ascii=False)
    assert not any(r["record"] == "help_request" for r in checkins)
    assert not any(r["record"] == "signal" and r["kind"] in ("help_request", "critical_answer") for r in checkins)
    assert all(not k.startswith("_") for r in checkins for k in r)
    assert [r["instrument"] for r in sections["surveys.family"]] == ["family"]
    # released by the data steward: all of it is there
    full = {s["key"]: s["rows"] for s in rights.disclosure(session, SYSTEM, child.id, release_withheld=True)["sections"]}
    assert any(r["record"] == "help_request" for r in full["surveys.checkins"])
    assert "ないしょ" in json.dumps(full, ensure_ascii=False)
    # staff names never appear
    text = json.dumps(full, ensure_ascii=False)
    for staff in (env["teacher"], env["counsellor"], env["lead"]):
        assert staff.name not in text


def test_file_register_lists_the_survey_files(app):
    names = [e["name"] for e in hooks.file_register_entries()]
    assert any("チェックイン" in n for n in names) and any("家庭環境" in n for n in names)


def test_guardian_cannot_load_anothers_questionnaire_and_consent_is_checked(session, sv, make):
    env = sv.setup(grade=3, instrument="family", frequency=Frequency.termly, start=time(0, 0), end=time(23, 0), days_open=14)
    scheduling.open_due(session, TERM_START)
    mine = make.guardian(env["child"])
    stranger = make.guardian(sv.consented_child(env["cls"]))
    me = principal_for(mine)
    aid = service.open_assignments(session, me, TERM_START)[0][0].id
    view = service.load_assignment(session, me, aid)
    assert view.owned and view.consented
    other = service.load_assignment(session, principal_for(stranger), aid)
    assert not other.owned and not other.consented
    give_consent(session, env["child"], "wellbeing_survey", withdraw=True)
    session.expunge_all()
    assert service.load_assignment(session, me, aid) is None  # purged with the consent
