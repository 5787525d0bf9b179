from __future__ import annotations

import pytest

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
