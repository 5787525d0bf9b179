"""Normalisation: each function on the contract's examples, plus properties."""

from __future__ import annotations

from datetime import date

import jaconv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backoffice.linkage import normalize as n


@pytest.mark.parametrize("variant,standard", [
    ("髙橋", "高橋"), ("山﨑", "山崎"), ("渡邊", "渡辺"), ("渡邉", "渡辺"), ("齋藤", "斎藤"), ("齊藤", "斎藤"),
    ("澤田", "沢田"), ("濱田", "浜田"), ("嶋田", "島田"), ("櫻井", "桜井"), ("廣田", "広田"), ("冨田", "富田"),
    ("關口", "関口"),
])
def test_variant_kanji_fold(variant, standard):
    assert n.name_kanji(variant) == n.name_kanji(standard) == standard


def test_variant_table_is_extensible():
    n.register_variants({"𠀋": "丈"})
    assert n.fold_variants("𠀋") == "丈"


@pytest.mark.parametrize("text", ["タカハシ ハナコ", "ﾀｶﾊｼ ﾊﾅｺ", "たかはし　はなこ", "Takahashi Hanako", "TAKAHASHI HANAKO"])
def test_readings_fold_to_one_key(text):
    assert n.kana_key(text) == "タカハシハナコ"


def test_long_vowels_and_romaji_agree():
    assert n.kana_key("タロウ") == n.kana_key("Taro") == n.kana_key("たろー")


@pytest.mark.parametrize("text,expected", [
    ("2015-04-01", date(2015, 4, 1)), ("2015/4/1", date(2015, 4, 1)), ("20150401", date(2015, 4, 1)),
    ("平成27年4月1日", date(2015, 4, 1)), ("H27.4.1", date(2015, 4, 1)), ("R2.05.03", date(2020, 5, 3)),
    ("令和2年5月3日", date(2020, 5, 3)), ("令和元年5月1日", date(2019, 5, 1)), ("Ｈ２７．４．１", date(2015, 4, 1)),
    ("昭和64年1月7日", date(1989, 1, 7)), ("S50.1.1", date(1975, 1, 1)), ("平成元年1月8日", date(1989, 1, 8)),
])
def test_dates_in_every_contract_form(text, expected):
    assert n.parse_date(text) == expected


@pytest.mark.parametrize("text", ["2015-02-30", "H31.2.30", "令和元年4月1日", "20151301", "abc", "", None, "R2.5",
                                  "2024-04-00", "20240400", "R6.4.0", "令和6年0月1日"])
def test_impossible_dates_are_none(text):
    assert n.parse_date(text) is None


def test_months():
    assert n.parse_month("2025-06") == date(2025, 6, 1)
    assert n.parse_month("R7.6") == date(2025, 6, 1)
    assert n.parse_month("令和7年6月") == date(2025, 6, 1)


@pytest.mark.parametrize("text,code", [("男", "M"), ("女", "F"), ("M", "M"), ("f", "F"), ("1", "M"), ("２", "F"), ("?", None), ("", None)])
def test_sex_codes(text, code):
    assert n.sex_code(text) == code


def test_addresses():
    assert n.address("みまもり町一丁目２番地３号") == n.address("みまもり町１－２－３") == "みまもり町1-2-3"
    assert n.address("みまもり町 十二丁目 5番") == "みまもり町12-5"


def test_id_numbers():
    assert n.id_number(" Ａ１２－３４ ") == "A1234"


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.text())
def test_property_nfkc_idempotent(text):
    assert n.nfkc(n.nfkc(text)) == n.nfkc(text)


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.text())
def test_property_fold_idempotent(text):
    assert n.fold_variants(n.fold_variants(text)) == n.fold_variants(text)


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.text(alphabet=st.characters(min_codepoint=0x3041, max_codepoint=0x3094)))
def test_property_hiragana_and_half_width_give_same_key(text):
    half = jaconv.z2h(jaconv.hira2kata(text), kana=True)
    assert n.kana_key(text) == n.kana_key(half)


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.text())
def test_property_kana_key_has_no_spaces_and_is_total(text):
    key = n.kana_key(text)
    assert " " not in key and "\u3000" not in key


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31)))
def test_property_every_form_of_a_date_parses_back(d):
    forms = [d.isoformat(), f"{d.year}/{d.month}/{d.day}", d.strftime("%Y%m%d")]
    for era, start, first in (("平成", 1988, date(1989, 1, 8)), ("令和", 2018, date(2019, 5, 1))):
        if d >= first and (era == "令和" or d < date(2019, 5, 1)):
            y = d.year - start
            forms.append(f"{era}{'元' if y == 1 else y}年{d.month}月{d.day}日")
            forms.append(f"{era[0] if False else ('H' if era == '平成' else 'R')}{y}.{d.month}.{d.day}")
    for f in forms:
        assert n.parse_date(f) == d, f


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.text())
def test_property_parse_date_never_raises(text):
    n.parse_date(text)
    n.parse_month(text)
    n.sex_code(text)
    n.address(text)


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.text())
def test_property_address_idempotent(text):
    assert n.address(n.address(text)) == n.address(text)


# -- more properties: widths, spaces, variants, codes ------------------------------

_KANJI_NAMES = st.text(alphabet="高橋崎辺斎沢浜島桜広富関山田花子太郎健", min_size=1, max_size=6)


@settings(deadline=None)  # timings vary on a loaded machine
@given(_KANJI_NAMES, st.data())
def test_property_variant_kanji_fold_to_the_standard_name(name, data):
    """Writing any character of a name in a variant form (髙, 﨑, 邊/邉, 齋/齊,
    澤, 濱, 嶋, 櫻, 廣, 冨, 關) gives the same compared name."""
    variants_of: dict[str, list[str]] = {}
    for variant, standard in n.VARIANTS.items():
        variants_of.setdefault(standard, []).append(variant)
    written = "".join(data.draw(st.sampled_from([c, *variants_of.get(c, [])])) for c in name)
    assert n.name_kanji(written) == n.name_kanji(name) == n.fold_variants(name)


@settings(deadline=None)  # timings vary on a loaded machine
@given(_KANJI_NAMES, _KANJI_NAMES, st.sampled_from(["", " ", "\u3000", "  ", " \u3000"]),
       st.sampled_from(["", " ", "\u3000"]))
def test_property_spaces_between_and_around_names_do_not_matter(family, given_name, sep, pad):
    assert n.name_kanji(pad + family + sep + given_name + pad) == n.name_kanji(family + given_name)


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.text(alphabet=st.characters(min_codepoint=0x30A1, max_codepoint=0x30F6), min_size=1),
       st.sampled_from(["", " ", "\u3000"]))
def test_property_katakana_is_its_own_kana_form(text, pad):
    assert n.katakana(pad + text + pad) == text
    assert n.katakana(jaconv.kata2hira(text)) == jaconv.hira2kata(jaconv.kata2hira(text))


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.sampled_from(["男", "女", "M", "F", "m", "f", "1", "2", "男性", "女性"]), st.sampled_from(["", " ", "\u3000"]),
       st.booleans())
def test_property_sex_codes_any_width_or_case(code, pad, wide):
    text = pad + (jaconv.h2z(code, ascii=True, digit=True) if wide else code) + pad
    expected = "M" if code in ("男", "M", "m", "1", "男性") else "F"
    assert n.sex_code(text) == expected


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.text(alphabet="ABCXYZ0123456789", min_size=1, max_size=12), st.booleans())
def test_property_id_numbers_any_width_with_hyphens_and_spaces(number, wide):
    text = jaconv.h2z(number, ascii=True, digit=True) if wide else number
    spaced = " " + "－".join([text[: len(text) // 2], text[len(text) // 2:]]) + "\u3000"
    assert n.id_number(text) == n.id_number(spaced) == number


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.sampled_from(["みまもり町", "ひだまり町", "こもれび町"]), st.integers(1, 99), st.integers(1, 99),
       st.integers(1, 99))
def test_property_address_forms_agree(town, chome, ban, go):
    expected = f"{town}{chome}-{ban}-{go}"
    forms = [expected, jaconv.h2z(expected, digit=True, ascii=True), f"{town}{chome}丁目{ban}番地{go}号",
             f"{town} {chome}丁目 {ban}番 {go}号", f"{town}{chome}－{ban}－{go}"]
    if chome < 10:
        forms.append(f"{town}{'〇一二三四五六七八九'[chome]}丁目{ban}番{go}号")
    for form in forms:
        assert n.address(form) == expected, form


@settings(deadline=None)  # timings vary on a loaded machine
@given(st.dates(min_value=date(1989, 1, 8), max_value=date(2030, 12, 31)))
def test_property_japanese_era_letters_with_zero_padding_and_full_width(d):
    if d >= date(2019, 5, 1):
        letter, y = "R", d.year - 2018
    else:
        letter, y = "H", d.year - 1988
    text = f"{letter}{y:02d}.{d.month:02d}.{d.day:02d}"
    assert n.parse_date(text) == d
    assert n.parse_date(jaconv.h2z(text, ascii=True, digit=True)) == d
    assert n.parse_date(text.lower()) == d
