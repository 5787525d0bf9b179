"""The rule language: parsing, validation (bad input refused clearly) and evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from backoffice.screening import rules
from backoffice.screening.indicators import CODES, INDICATORS, IndicatorTable
from backoffice.screening.rules import RuleError


def test_demo_rules_parse():
    parsed = rules.parse(rules.DEMO_RULES)
    codes = [r["code"] for r in parsed]
    assert codes == ["long_absence", "absence_recent", "help_requested", "mood_and_background", "health_and_fees"]
    mb = parsed[3]["when"]
    assert mb["all"][1] == {
        "at_least": 1,
        "of": [
            {"ind": "single_parent_allowance", "op": "is", "value": True},
            {"ind": "public_assistance", "op": "is", "value": True},
            {"ind": "school_cost_assistance", "op": "is", "value": True},
            {"ind": "lunch_arrears_months", "op": ">=", "value": 2},
        ],
    }


def test_rate_threshold_in_percent():
    [r] = rules.parse("absence: absence_rate_3m >= 10%")
    assert r["when"] == {"ind": "absence_rate_3m", "op": ">=", "value": 0.1}
    assert r["urgency"] == 2


@pytest.mark.parametrize(
    "source, message",
    [
        ("a: absense_rate_3m >= 10%", "unknown indicator “absense_rate_3m”"),
        ("a: absence_rate_3m >= ten", "must be a number"),
        ("a: absence_rate_3m >= 10", "write the threshold in percent"),
        ("a: absence_rate_3m >= 150%", "more than 100%"),
        ("a: absence_days_3m >= 2.5", "write a whole number"),
        ("a: absence_days_3m >= 20%", "not a percentage"),
        ("a: low_mood >= 1", "yes/no fact and takes no threshold"),
        ("a: absence_days_3m", "is a number: compare it"),
        ("a [5]: low_mood", "urgency in brackets must be 1, 2 or 3"),
        ("low_mood", "a rule starts with its name"),
        ("a: low_mood\na: help_request", "used twice"),
        ("a: at least 3 of (low_mood, help_request)", "lists only 2 conditions"),
        ("a: (low_mood and", "ends too early"),
        ("a: low_mood help_request", "unexpected “help_request”"),
        ("# nothing\n", "has no rules"),
    ],
)
def test_bad_rules_refused_with_clear_message(source, message):
    with pytest.raises(RuleError) as err:
        rules.parse(source)
    assert message in str(err.value)


def test_error_names_the_line():
    with pytest.raises(RuleError, match="Line 3: unknown indicator"):
        rules.parse("a: low_mood\n# comment\nb: nope")


def _table(rows: list[dict]) -> IndicatorTable:
    t = IndicatorTable(child_ids=np.arange(1, len(rows) + 1))
    for c in CODES:
        kind = INDICATORS[c].type
        t.columns[c] = np.array([r.get(c, 0) for r in rows], dtype=bool if kind == "bool" else float)
    t.covered = {"data_linkage": np.ones(len(rows), bool), "wellbeing_survey": np.array([r.get("_s", True) for r in rows])}
    return t


def test_evaluation_and_facts():
    [r] = rules.parse("mix: at least 2 of (single_parent_allowance, public_assistance, lunch_arrears_months >= 2) and low_mood")
    t = _table(
        [
            {"single_parent_allowance": True, "lunch_arrears_months": 3, "low_mood": True},
            {"single_parent_allowance": True, "low_mood": True},
            {"single_parent_allowance": True, "public_assistance": True, "low_mood": False},
            {"single_parent_allowance": True, "public_assistance": True, "low_mood": True, "_s": False},
        ]
    )
    assert rules.rule_mask(r, t).tolist() == [True, False, False, False]  # the last lacks survey consent
    facts = rules.facts_for(r, t, 0)
    assert [(f["indicator"], f["fact"]) for f in facts] == [
        ("single_parent_allowance", True),
        ("lunch_arrears_months", 3),
        ("low_mood", True),
    ]


def test_not_and_or():
    [r] = rules.parse("x: not low_mood and (help_request or absence_days_3m > 5)")
    t = _table([{"help_request": True}, {"absence_days_3m": 5}, {"absence_days_3m": 6, "low_mood": True}, {"absence_days_3m": 6}])
    assert rules.rule_mask(r, t).tolist() == [True, False, False, True]
