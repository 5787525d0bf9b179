"""Evaluation (判定結果の検証): per-rule figures, the exported report, analysts' view, the model card."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from backoffice.screening import evaluation as ev
from backoffice.screening import model as ml
from backoffice.screening.models import Flag, FlagSource, FlagStatus, Outcome, Resolution
from portal.auth.principal import SYSTEM

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def _flag(session, child, source, code=None, *, day=0, decided_after=None, outcome=None, cleared=False):
    f = Flag(
        child_id=child.id, source=source, rule_code=code, reason_key=f"rule:{code}" if code else f"manual:{child.id}-{day}",
        reasons=[], status=FlagStatus.open, created_at=T0 + timedelta(days=day),
    )
    if decided_after is not None:
        f.status, f.resolution, f.outcome = FlagStatus.resolved, Resolution.school_decided, outcome
        f.resolved_at = f.created_at + timedelta(days=decided_after)
    elif cleared:
        f.status, f.resolution = FlagStatus.resolved, Resolution.facts_cleared
        f.resolved_at = f.created_at + timedelta(days=30)
    session.add(f)
    session.flush()
    return f


@pytest.fixture
def history(session, make, consented):
    _, klass = make.teacher_with_class(grade=5)
    a, b, c, d = (consented(klass, name=n) for n in ("評価 あおい", "評価 ひかる", "評価 そら", "評価 みなと"))
    _flag(session, a, FlagSource.rule, "r1", decided_after=4, outcome=Outcome.confirmed)
    _flag(session, b, FlagSource.manual, day=0, decided_after=2, outcome=Outcome.not_needed)
    _flag(session, b, FlagSource.rule, "r1", day=10, decided_after=2, outcome=Outcome.confirmed)
    _flag(session, c, FlagSource.rule, "r1", cleared=True)
    _flag(session, d, FlagSource.rule, "r2", decided_after=6, outcome=Outcome.not_needed)
    return [a, b, c, d]


def test_per_rule_figures(session, history):
    stats = {s["rule"]: s for s in ev.rule_stats(session)}
    assert stats["r1"] == {
        "rule": "r1", "source": "rule", "flagged": 3, "flags": 3, "decided": 2, "confirmed_share": 1.0,
        "newly_found": 1,  # the second child was flagged first by hand
        "override_rate": 0.0, "median_days_to_decision": 3.0,
    }
    assert stats["manual"]["decided"] == 1 and stats["manual"]["override_rate"] == 1.0
    assert stats["manual"]["median_days_to_decision"] == 2.0
    assert stats["r2"]["confirmed_share"] == 0.0 and stats["r2"]["newly_found"] == 0


def test_small_cells_are_suppressed_for_analysts(session, history):
    stats = ev.rule_stats(session, suppress=True)
    assert all(s.get("suppressed") for s in stats)
    assert all(s["flagged"] is None and s["confirmed_share"] is None for s in stats)


def test_analyst_sees_aggregates_only_no_names(session, make, history, login, client):
    m = ml.train(session, SYSTEM, ml.synthetic_decisions(300, seed=1))
    analyst = make.staff("analyst")
    steward = make.staff("data_steward")
    session.commit()
    login(analyst)
    html = client.get("/staff/screening/evaluation").get_data(as_text=True)
    assert not any(child.name in html for child in history)
    assert "<code>r1</code>" in html and "学校S1" in html  # schools under pseudonyms
    report = client.get("/staff/screening/evaluation.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(report.lstrip("\ufeff"))))
    assert rows[0][:5] == ["section", "name", "flagged", "flags", "decided"]
    r1 = next(r for r in rows if r[:2] == ["rule", "r1"])
    assert r1[2:5] == ["", "", ""]  # suppressed: fewer than five children
    assert not any(child.name in report for child in history)
    assert client.get(f"/staff/screening/model/{m.id}/card.md").status_code == 200
    assert client.get("/staff/screening/").status_code == 403  # never the queue of named children
    client.get("/logout")
    login(steward)
    report = client.get("/staff/screening/evaluation.csv").get_data(as_text=True)
    r1 = next(r for r in csv.reader(io.StringIO(report.lstrip("\ufeff"))) if r[:2] == ["rule", "r1"])
    assert r1[2:8] == ["3", "3", "2", "1.0", "1", "0.0"]


def test_report_carries_model_card_by_group_with_intervals(session):
    m = ml.train(session, SYSTEM, ml.synthetic_decisions(400, seed=3))
    header, rows = ev.report_rows([], m.card)
    names = {r[0] for r in rows}
    assert {"model", "model_calibration", "model_by_sex_auc", "model_by_grade_auc", "model_by_school_auc",
            "model_by_sex_precision_at_k", "model_by_sex_recall_at_top_k", "model_by_school_selection_rate_difference"} <= names
    auc = next(r for r in rows if r[0] == "model" and r[1] == "auc")
    value, low, high = auc[-3:]
    assert low <= value <= high
    schools = {r[1] for r in rows if r[0] == "model_by_school_auc"}
    assert schools == {"S1", "S2", "S3"}  # pseudonyms, never a school's id or name


def test_model_card_groups_under_five_decisions_are_hidden_from_analysts(session, make, login, client):
    import copy

    m = ml.train(session, SYSTEM, ml.synthetic_decisions(400, seed=3))
    card = copy.deepcopy(m.card)
    small = card["by_grade"][0]
    small["n"], small["auc"] = 3, 0.987  # a group too small to show
    m.card = card
    analyst, steward = make.staff("analyst"), make.staff("data_steward")
    session.commit()

    hidden = ev.suppress_card(m.card)
    assert hidden["by_grade"][0]["auc"] is None and hidden["by_grade"][0]["suppressed"]
    assert small["group"] not in hidden["fairness"]["by_grade"]["by_group"]
    # One other group is hidden with it (complementary: the held-out total minus the rest would
    # give it back); every other group keeps its size and AUC.
    shown = [g for g in hidden["by_grade"] if not g.get("suppressed")]
    assert len(shown) == len(card["by_grade"]) - 2
    by_group = {g["group"]: g for g in card["by_grade"]}
    assert all(g["n"] == by_group[g["group"]]["n"] and g["auc"] == by_group[g["group"]]["auc"] for g in shown)

    login(analyst)
    for url in ("/staff/screening/evaluation", "/staff/screening/evaluation.csv", f"/staff/screening/model/{m.id}/card.md"):
        assert "0.987" not in client.get(url).get_data(as_text=True), url
    client.get("/logout")
    login(steward)
    assert "0.987" in client.get(f"/staff/screening/model/{m.id}/card.md").get_data(as_text=True)
