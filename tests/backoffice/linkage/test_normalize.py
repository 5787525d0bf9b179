"""Normalisation: each function on the contract's examples, plus properties."""

from __future__ import annotations

from datetime import date

import jaconv
import pytest
from hypothesis import given
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


@pytest.mark.parametrize("text", ["2015-02-30", "H31.2.30", "令和元年4月1日", "20151301", "abc", "", None, "R2.5"])
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


@given(st.text())
def test_property_nfkc_idempotent(text):
    assert n.nfkc(n.nfkc(text)) == n.nfkc(text)


@given(st.text())
def test_property_fold_idempotent(text):
    assert n.fold_variants(n.fold_variants(text)) == n.fold_variants(text)


@given(st.text(alphabet=st.characters(min_codepoint=0x3041, max_codepoint=0x3094)))
def test_property_hiragana_and_half_width_give_same_key(text):
    half = jaconv.z2h(jaconv.hira2kata(text), kana=True)
    assert n.kana_key(text) == n.kana_key(half)


@given(st.text())
def test_property_kana_key_has_no_spaces_and_is_total(text):
    key = n.kana_key(text)
    assert " " not in key and "\u3000" not in key


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


@given(st.text())
def test_property_parse_date_never_raises(text):
    n.parse_date(text)
    n.parse_month(text)
    n.sex_code(text)
    n.address(text)


@given(st.text())
def test_property_address_idempotent(text):
    assert n.address(n.address(text)) == n.address(text)
