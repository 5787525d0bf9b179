"""The consent gate: effective consent computed from append-only events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from consent import service
from consent.gate import consented_child_ids, is_consented
from consent.models import Action, ConsentEvent, ImmutableRecordError, OldConsent, Party
from consent.testing import ensure_purposes, give_consent
from portal.auth.principal import SYSTEM, Principal
from portal.orm import utcnow
from portal.people.models import Child


def gp(guardian) -> Principal:
    return Principal(kind="guardian", id=guardian.id, role="guardian")


def sp(child) -> Principal:
    return Principal(kind="student", id=child.id, role="student")


def gate_ids(session, code, at=None) -> set[int]:
    return set(session.scalars(consented_child_ids(code, at)))


def test_gate_is_a_select_other_code_can_use_with_in(session, make):
    a, b = make.child(grade=3), make.child(grade=3)
    make.guardian(a), make.guardian(b)
    give_consent(session, a, "data_linkage")
    rows = session.scalars(select(Child.id).where(Child.id.in_(consented_child_ids("data_linkage")))).all()
    assert rows == [a.id]
    gate = consented_child_ids("data_linkage").subquery()
    joined = session.scalars(select(Child.name).join(gate, gate.c.child_id == Child.id)).all()
    assert joined == [a.name]


def test_elementary_child_needs_guardian_only(session, make):
    child = make.child(grade=6)
    make.guardian(child)
    give_consent(session, child, "wellbeing_survey")
    assert is_consented(session, child.id, "wellbeing_survey")
    assert not is_consented(session, child.id, "data_linkage")


def test_junior_high_child_needs_own_consent_too(session, make):
    child = make.child(grade=7)
    g = make.guardian(child)
    purposes = ensure_purposes(session)
    p = purposes["data_linkage"]
    service.record_event(session, gp(g), child.id, p, Party.guardian, Action.grant)
    assert not is_consented(session, child.id, "data_linkage")
    service.record_event(session, sp(child), child.id, p, Party.child, Action.grant)
    assert is_consented(session, child.id, "data_linkage")
    # The child's own withdrawal takes them out of the gate at once.
    service.record_event(session, sp(child), child.id, p, Party.child, Action.withdraw)
    assert not is_consented(session, child.id, "data_linkage")


def test_give_consent_helper_gives_child_part_for_junior_high(session, make):
    child = make.child(grade=8)
    make.guardian(child)
    give_consent(session, child, "data_linkage", "wellbeing_survey")
    assert gate_ids(session, "data_linkage") == {child.id}
    give_consent(session, child, "data_linkage", withdraw=True)
    assert gate_ids(session, "data_linkage") == set()
    assert gate_ids(session, "wellbeing_survey") == {child.id}


def test_second_guardians_later_withdrawal_wins(session, make):
    child = make.child(grade=3)
    g1 = make.guardian(child)
    g2 = make.guardian(child)
    p = ensure_purposes(session)["data_linkage"]
    service.record_event(session, gp(g1), child.id, p, Party.guardian, Action.grant)
    service.record_event(session, gp(g2), child.id, p, Party.guardian, Action.withdraw)
    assert not is_consented(session, child.id, "data_linkage")


def test_material_version_that_lapses_asks_again(session, make):
    child = make.child(grade=3)
    make.guardian(child)
    give_consent(session, child, "data_linkage")
    p = service.purpose_by_code(session, "data_linkage")
    service.publish_version(session, SYSTEM, p, {"ja": ("題", "本文 v2", "")}, material=True, old_consent=OldConsent.stands)
    assert is_consented(session, child.id, "data_linkage"), "old consent stands"
    service.publish_version(session, SYSTEM, p, {"ja": ("題", "本文 v3", "")}, material=True, old_consent=OldConsent.lapses)
    assert not is_consented(session, child.id, "data_linkage"), "old consent lapses"
    give_consent(session, child, "data_linkage")
    assert is_consented(session, child.id, "data_linkage")


def test_gate_at_a_past_moment(session, make):
    child = make.child(grade=3)
    make.guardian(child)
    before = utcnow()
    give_consent(session, child, "data_linkage")
    assert gate_ids(session, "data_linkage", at=before - timedelta(seconds=1)) == set()
    assert gate_ids(session, "data_linkage", at=utcnow()) == {child.id}
    assert not is_consented(session, child.id, "data_linkage", at=before - timedelta(seconds=1))
    assert is_consented(session, child.id, "data_linkage", at=utcnow())


def test_inactive_purpose_lets_nobody_through(session, make):
    child = make.child(grade=3)
    make.guardian(child)
    give_consent(session, child, "data_linkage")
    service.purpose_by_code(session, "data_linkage").active = False
    session.flush()
    assert gate_ids(session, "data_linkage") == set()


def test_events_and_documents_are_immutable(session, make):
    child = make.child(grade=3)
    make.guardian(child)
    give_consent(session, child, "data_linkage")
    ev = session.scalar(select(ConsentEvent))
    ev.action = Action.withdraw
    with pytest.raises(ImmutableRecordError):
        session.flush()
    session.rollback()


def test_published_document_hash_verifies(session):
    p = ensure_purposes(session)["data_linkage"]
    doc = service.document_for(session, p, "en")
    assert doc.locale == "en" and len(doc.sha256) == 64 and doc.verify()


# -- property: the gate agrees with a plain model of the rule -------------------------

STEP = st.tuples(
    st.integers(0, 2),  # which child (grades 3, 7, 9)
    st.sampled_from(["g1", "g2", "child"]),  # who acts: two guardians, or the child
    st.sampled_from(["grant", "withdraw"]),
    st.sampled_from([None, None, "stands", "lapses"]),  # publish a new version first?
)
GRADES = (3, 7, 9)


def _model_gate(model, children, valid_from) -> set[int]:
    """The rule, plainly: the guardian side's latest decision is a grant on a version
    that has not lapsed, and so is the child's own from grade 7."""

    def ok(cid, party):
        last = model.get((cid, party))
        return last is not None and last[0] == "grant" and last[1] >= valid_from

    return {c.id for c, grade in zip(children, GRADES, strict=True) if ok(c.id, "guardian") and (grade < 7 or ok(c.id, "child"))}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=14))
def test_gate_matches_a_model_of_the_rule(app, session, make, monkeypatch, steps):
    from tests.conftest import _empty_tables

    session.rollback()
    _empty_tables()
    # Each step happens a minute after the previous one, a day ago, so the gate
    # can be asked about every moment in between ("now" is the step's moment).
    start = utcnow() - timedelta(days=1)
    clock = {"now": start - timedelta(hours=1)}
    monkeypatch.setattr(service, "utcnow", lambda: clock["now"])
    p = ensure_purposes(session, "data_linkage")["data_linkage"]
    children = [make.child(grade=g) for g in GRADES]
    guardians = {c.id: (make.guardian(c), make.guardian(c)) for c in children}
    version, valid_from = 1, 1
    model: dict[tuple[int, str], tuple[str, int]] = {}
    moments: list[tuple] = []
    for i, (idx, who, action, publish) in enumerate(steps):
        at = start + timedelta(minutes=i)
        if publish:
            version += 1
            clock["now"] = at - timedelta(seconds=10)
            service.publish_version(session, SYSTEM, p, {"ja": ("t", f"v{version}", "")}, old_consent=OldConsent(publish))
            if publish == "lapses":
                valid_from = version
        child = children[idx]
        if who == "child":
            actor, party = sp(child), "child"
        else:
            actor, party = gp(guardians[child.id][0 if who == "g1" else 1]), "guardian"
        prev = model.get((child.id, party))
        clock["now"] = at
        try:
            service.record_event(session, actor, child.id, p, Party(party), Action(action))
        except service.NotAllowed:
            assert party == "child" and GRADES[idx] < 7  # a grade-3 child is not asked
        except service.AlreadyRecorded:
            assert (prev is None and action == "withdraw") or (prev[0] == action and (action == "withdraw" or prev[1] == version))
        else:
            model[(child.id, party)] = (action, version if action == "grant" else (prev[1] if prev else version))
        moments.append((at + timedelta(seconds=30), _model_gate(model, children, valid_from)))

    monkeypatch.undo()
    assert gate_ids(session, "data_linkage") == moments[-1][1]
    for moment, expected in moments:
        assert gate_ids(session, "data_linkage", at=moment) == expected
    assert gate_ids(session, "data_linkage", at=start - timedelta(seconds=1)) == set()
    for c in children:
        assert is_consented(session, c.id, "data_linkage") == (c.id in moments[-1][1])
    session.rollback()


def test_a_published_version_cannot_be_changed(session):
    p = ensure_purposes(session)["data_linkage"]
    v = service.current_version(session, p.id)
    v.old_consent = OldConsent.lapses
    with pytest.raises(ImmutableRecordError):
        session.flush()
    session.rollback()
