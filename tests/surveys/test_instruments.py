from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from surveys import instruments, scoring


def test_every_instrument_file_validates_and_has_both_languages():
    for inst in instruments.all_instruments():
        assert inst.version
        for item in inst.items:
            assert item.text["ja"] and item.text["en"]
            for opt in item.options:
                assert opt.label["ja"] and opt.label["en"]


def test_no_sdq_or_qta30_is_shipped():
    names = {p.name.lower() for p in instruments.HERE.iterdir()}
    assert not any("sdq" in n or "qta" in n for n in names)


def test_who5_notice_and_content_licence_sit_beside_the_files():
    assert (instruments.HERE / "NOTICE-who5.md").read_text().count("CC BY-NC-SA") >= 1
    assert "not validated" in (instruments.HERE / "LICENSE-content.md").read_text()
    assert instruments.get("who5").wording == {"en": "official", "ja": "adapted"}
    assert instruments.get("mood").validated is False


def test_ruby_is_rendered_for_young_children_and_escaped():
    assert str(instruments.render_text("{今日|きょう}<b>", ruby=True)) == "<ruby>今日<rp>(</rp><rt>きょう</rt><rp>)</rp></ruby>&lt;b&gt;"
    assert str(instruments.render_text("{今日|きょう}は", ruby=False)) == "今日は"


@pytest.mark.parametrize("values,expected", [((5, 5, 5, 5, 5), 100), ((0, 0, 0, 0, 0), 0), ((3, 2, 3, 2, 2), 48), ((3, 3, 3, 2, 2), 52)])
def test_who5_scores_raw_sum_times_four_and_50_or_below_is_poor(values, expected):
    inst = instruments.get("who5")
    checked = scoring.check(inst, 8, {f"q{i + 1}": str(v) for i, v in enumerate(values)})
    assert checked.ok
    result = scoring.score(inst, checked.answers)
    assert result.score == expected
    assert result.low is (expected <= 50)


def test_mood_check_refuses_missing_and_out_of_range_answers():
    inst = instruments.get("mood")
    checked = scoring.check(inst, 2, {"weather": "9", "sleep": "x"})
    assert set(checked.errors) == {"weather", "sleep", "breakfast", "friends", "worries", "talk"}
    assert "えらべません" in str(checked.errors["weather"])
    assert "こたえを えらんでね" in str(checked.errors["breakfast"])


def test_mood_note_is_only_asked_from_grade_4():
    inst = instruments.get("mood")
    assert "note" not in [i.id for i in inst.items_for(2)]
    assert "note" in [i.id for i in inst.items_for(5)]


def test_family_worries_count_flags():
    inst = instruments.get("family")
    checked = scoring.check(inst, 3, {"household": "2", "worries": ["1", "3"], "child_cares": "2"})
    assert checked.ok
    assert scoring.score(inst, checked.answers).flags == 3


# -- properties: the answer parser and the ruby renderer never trust their input ---------

_raw_value = st.one_of(st.none(), st.text(max_size=8), st.integers(-5, 12).map(str), st.lists(st.integers(-2, 8).map(str), max_size=4))


@settings(max_examples=200, deadline=None)
@given(code=st.sampled_from(["mood", "who5", "family"]), grade=st.integers(1, 9), raw=st.dictionaries(
    st.sampled_from(["weather", "sleep", "breakfast", "friends", "worries", "talk", "note", "q1", "q2", "q3", "q4", "q5",
                     "household", "support", "child_cares", "contact", "unknown"]), _raw_value, max_size=10))
def test_check_accepts_only_offered_choices_and_reports_the_rest(code, grade, raw):
    inst = instruments.get(code)
    checked = scoring.check(inst, grade, raw)
    asked = {i.id for i in inst.items_for(grade)}
    assert set(checked.answers) | set(checked.free_text) | set(checked.errors) <= asked
    for item_id, value in checked.answers.items():
        item = inst.item(item_id)
        values = value if isinstance(value, list) else [value]
        assert all(item.option(v) is not None for v in values)
        assert item.type == "multi" or not isinstance(value, list)
    for item in inst.items_for(grade):
        if item.required and item.id not in checked.answers:
            assert item.id in checked.errors  # a missing required answer is never silently dropped
    if checked.ok:
        result = scoring.score(inst, checked.answers)
        lo, hi = inst.score.get("min"), inst.score.get("max")
        if result.score is not None and lo is not None:
            assert lo <= result.score <= hi


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_ruby_marks_render_escaped_and_plain_text_drops_them(text):
    assert str(instruments.render_text(text, ruby=False)) == str(escape(instruments.plain_text(text)))
    with_ruby = str(instruments.render_text(text, ruby=True))
    stripped = with_ruby.replace("<ruby>", "").replace("</ruby>", "").replace("<rp>", "").replace("</rp>", "")
    stripped = stripped.replace("<rt>", "").replace("</rt>", "")
    assert "<" not in stripped  # nothing from the text becomes markup
