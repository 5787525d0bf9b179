"""Normalising the fields of administrative records before matching.

Each function is small, total (never raises on odd text: it returns ``""`` or
``None``) and idempotent, which the property tests check. Names keep their
spaces out: matching compares names without the family/given separator,
because files disagree about it.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache

import jaconv
from jntajis import MJShrinkSchemeCombo, mj_shrink_candidates

# -- text -----------------------------------------------------------------------

_SPACES = re.compile(r"[\s\u3000]+")
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d\u2500\u2501\ufe63\uff70"
_TO_HYPHEN = str.maketrans({d: "-" for d in _DASHES})


@lru_cache(maxsize=262144)
def nfkc(text: str | None) -> str:
    """NFKC with surrounding spaces removed and inner runs collapsed to one.

    (Cached, like the other pure functions here: a file repeats the same
    family names, addresses and codes on many rows.)"""
    if not text:
        return ""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def no_spaces(text: str) -> str:
    return "".join(text.split())  # every Unicode space, the full-width one included


# -- variant kanji (異体字) -------------------------------------------------------

#: Folding table for variant kanji common in names. It is applied before the
#: MJ shrink map (jntajis), and wins over it; extend it here (or with
#: :func:`register_variants`) when a municipality's data shows more pairs.
VARIANTS: dict[str, str] = {
    "髙": "高", "﨑": "崎", "嵜": "崎", "碕": "崎",
    "邊": "辺", "邉": "辺",
    "齋": "斎", "齊": "斎", "斉": "斎", "齎": "斎",
    "澤": "沢", "濱": "浜", "嶋": "島", "嶌": "島",
    "櫻": "桜", "廣": "広", "冨": "富", "關": "関",
    "國": "国", "籐": "藤", "藪": "薮", "槇": "槙", "瀨": "瀬",
    "德": "徳", "惠": "恵", "眞": "真", "萬": "万", "與": "与",
    "龍": "竜", "彌": "弥", "曾": "曽", "﨔": "欅",
    "實": "実", "壽": "寿", "榮": "栄", "條": "条",
    "淺": "浅", "鐵": "鉄", "藏": "蔵", "禮": "礼", "豐": "豊",
    "𠮷": "吉",
}
_MJ_COMBO = (
    MJShrinkSchemeCombo.JIS_INCORPORATION_UCS_UNIFICATION_RULE
    | MJShrinkSchemeCombo.INFERENCE_BY_READING_AND_GLYPH
    | MJShrinkSchemeCombo.MOJ_NOTICE_582
    | MJShrinkSchemeCombo.MOJ_FAMILY_REGISTER_ACT_RELATED_NOTICE
)
_IVS = re.compile("[\U000e0100-\U000e01ef\ufe00-\ufe0f]")


def register_variants(pairs: dict[str, str]) -> None:
    """Add variant → standard pairs to the folding table."""
    VARIANTS.update(pairs)
    for fn in (_fold_char, fold_variants, name_kanji, address):
        fn.cache_clear()


@lru_cache(maxsize=65536)
def _fold_char(ch: str) -> str:
    # Folding may chain (𧡽→賴→頼): repeat until nothing changes.
    for _ in range(4):
        folded = _fold_once(ch)
        if folded == ch or len(folded) != 1:
            return folded
        ch = folded
    return ch


def _fold_once(ch: str) -> str:
    if ch in VARIANTS:
        return VARIANTS[ch]
    if ord(ch) < 0x3400:  # ASCII, kana and symbols: nothing to shrink
        return ch
    try:
        candidates = mj_shrink_candidates(ch, _MJ_COMBO, 1)
    except Exception:  # noqa: BLE001 (a character outside the MJ table)
        return ch
    folded = candidates[0] if candidates else ch
    return VARIANTS.get(folded, folded)


@lru_cache(maxsize=262144)
def fold_variants(text: str) -> str:
    """Fold variant kanji to their common form (髙→高, 邉→辺, 齊→斎 …)."""
    text = _IVS.sub("", text)
    return "".join(_fold_char(c) for c in text)


# -- names ----------------------------------------------------------------------

_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff々〆]")
_KANA_ONLY = re.compile(r"^[\u3041-\u3096\u30a1-\u30fa\u30fc\u30fd\u30fe\u309d\u309e ]+$")
_LATIN_ONLY = re.compile(r"^[a-z' .-]+$")
_LONG_U = re.compile("([オコソトノホモヨロゴゾドボポョウクスツヌフムユルグズブプュ])ウ")
_SMALL = str.maketrans("ァィゥェォッャュョヮヵヶ", "アイウエオツヤユヨワカケ")


def katakana(text: str | None) -> str:
    """Any kana (half-width, hiragana) or romaji as full-width katakana, spaces collapsed."""
    t = nfkc(text)  # NFKC already widens half-width kana
    if not t:
        return ""
    low = t.lower()
    if _LATIN_ONLY.match(low):
        t = jaconv.alphabet2kana(low.replace("'", "").replace("-", ""))
    return nfkc(jaconv.hira2kata(t))


def kana_key(text: str | None) -> str:
    """A kana form for comparison: katakana, no spaces, long vowels and small
    kana folded (ヨウコ/ヨーコ, ショウ/ショー differ often between systems)."""
    k = no_spaces(katakana(text))
    if not k:
        return ""
    k = k.replace("ヅ", "ズ").replace("ヂ", "ジ").replace("ヲ", "オ").replace("ー", "")
    # Long vowels written or not (タロウ/タロー/Taro, ユウマ/Yuma): drop a ウ
    # after an o- or u-column kana, then fold small kana.
    k = _LONG_U.sub(r"\1", k)
    return k.translate(_SMALL)


def is_kana_or_latin(text: str) -> bool:
    t = nfkc(text)
    return bool(t) and not _KANJI.search(t) and (
        bool(_KANA_ONLY.match(jaconv.hira2kata(t))) or bool(_LATIN_ONLY.match(t.lower()))
    )


@lru_cache(maxsize=262144)
def name_kanji(text: str | None) -> str:
    """The written name as compared: NFKC, no spaces, variant kanji folded.
    Empty when the name is written in kana or romaji only (then it is a
    reading, see :func:`name_reading`)."""
    t = nfkc(text)
    if not t or not _KANJI.search(t):
        return ""
    return fold_variants(no_spaces(t))


def split_name(text: str | None) -> tuple[str, str]:
    """(family, given) when the name has a separator, else (whole, "")."""
    t = nfkc(text)
    if " " in t:
        family, given = t.split(" ", 1)
        return family, no_spaces(given)
    return t, ""


def name_reading(name: str | None, kana: str | None) -> str:
    """The kana key of a record: its カナ column, else its name when that is
    written in kana or romaji."""
    if kana and nfkc(kana):
        return kana_key(kana)
    if name and is_kana_or_latin(name):
        return kana_key(name)
    return ""


# -- dates ----------------------------------------------------------------------

ERAS: dict[str, int] = {  # first Gregorian year of each era, minus one
    "明治": 1867, "大正": 1911, "昭和": 1925, "平成": 1988, "令和": 2018,
    "M": 1867, "T": 1911, "S": 1925, "H": 1988, "R": 2018,
    "明": 1867, "大": 1911, "昭": 1925, "平": 1988, "令": 2018,
}
_ERA_START = {1867: date(1868, 1, 25), 1911: date(1912, 7, 30), 1925: date(1926, 12, 25),
              1988: date(1989, 1, 8), 2018: date(2019, 5, 1)}
_ERA_RE = re.compile(
    r"^(明治|大正|昭和|平成|令和|明|大|昭|平|令|[MTSHR])\s*(元|\d{1,2})\s*[年./-]\s*(\d{1,2})\s*(?:[月./-]\s*(\d{1,2})\s*日?)?\s*(?:月)?$"
)
_ISO_RE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*(?:[-/.月]\s*(\d{1,2})\s*日?)?\s*(?:月)?$")
_COMPACT_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})?$")


def _date_text(text: str | None) -> str:
    return nfkc(text).translate(_TO_HYPHEN).upper().replace("(", "").replace(")", "")


def _build(year: int, month: int, day: int | None) -> date | None:
    try:
        return date(year, month, 1 if day is None else day)
    except ValueError:
        return None


def parse_date(text: str | None, *, month_only: bool = False) -> date | None:
    """A date in any contract form, or None when absent or impossible.

    ISO (2015-04-01), slashed (2015/4/1), compact (20150401), Japanese era in
    kanji or letters (平成27年4月1日, H27.4.1, R2.05.03, 令和元年5月1日).
    With ``month_only`` a year-month (2025-06, R7.6, 202506) gives the 1st.
    A date before the start of the era it names is refused (平成1年1月1日).
    """
    t = _date_text(text)
    if not t:
        return None
    m = _ERA_RE.match(t)
    if m:
        base = ERAS[m.group(1)]
        year = 1 if m.group(2) == "元" else int(m.group(2))
        if year < 1:
            return None
        if m.group(4) is None and not month_only:
            return None
        d = _build(base + year, int(m.group(3)), int(m.group(4)) if m.group(4) else None)
        if d is None:
            return None
        start = _ERA_START[base]
        if year == 1 and m.group(4) and d < start:
            return None
        return d
    m = _ISO_RE.match(t)
    if m:
        if m.group(3) is None and not month_only:
            return None
        return _build(int(m.group(1)), int(m.group(2)), int(m.group(3)) if m.group(3) else None)
    m = _COMPACT_RE.match(t)
    if m:
        if m.group(3) is None and not month_only:
            return None
        return _build(int(m.group(1)), int(m.group(2)), int(m.group(3)) if m.group(3) else None)
    return None


def parse_month(text: str | None) -> date | None:
    """A year-month (対象年月) as the first of the month."""
    d = parse_date(text, month_only=True)
    return d.replace(day=1) if d else None


# -- codes and numbers ----------------------------------------------------------

_SEX = {
    "男": "M", "男性": "M", "男子": "M", "M": "M", "MALE": "M", "1": "M",
    "女": "F", "女性": "F", "女子": "F", "F": "F", "FEMALE": "F", "2": "F",
}


def sex_code(text: str | None) -> str | None:
    """'M', 'F' or None (unknown or absent)."""
    return _SEX.get(nfkc(text).upper())


_NO_DASHES = str.maketrans("", "", _DASHES + "-")


def id_number(text: str | None) -> str:
    """A 児童生徒番号 / 宛名番号: half-width, no spaces or hyphens, upper case."""
    if not text:
        return ""
    if text.isascii() and text.isalnum():  # the usual case, without NFKC
        return text.upper()
    return no_spaces(nfkc(text)).upper().translate(_NO_DASHES)


def integer(text: str | None) -> int | None:
    t = no_spaces(nfkc(text)).replace(",", "")
    if not t:
        return None
    try:
        return int(t)
    except ValueError:
        try:
            f = float(t)
        except ValueError:
            return None
        return int(f) if f.is_integer() else None


def decimal_number(text: str | None) -> float | None:
    t = no_spaces(nfkc(text)).replace(",", "")
    if not t:
        return None
    try:
        return float(t)
    except ValueError:
        return None


# -- addresses ------------------------------------------------------------------

_KANSUJI = str.maketrans("〇一二三四五六七八九", "0123456789")
_CHOME = re.compile(r"(\d+)\s*(?:丁目|番地|番|号の?|の)\s*")
_KANSUJI_NUM = re.compile(r"([〇一二三四五六七八九十]+)(?=丁目|番地|番|号)")


def _kansuji_to_int(s: str) -> str:
    if "十" not in s:
        return s.translate(_KANSUJI)
    tens, _, ones = s.partition("十")
    value = (int(tens.translate(_KANSUJI)) if tens else 1) * 10 + (int(ones.translate(_KANSUJI)) if ones else 0)
    return str(value)


@lru_cache(maxsize=262144)
def address(text: str | None) -> str:
    """Address for comparison: NFKC, no spaces, variant kanji folded, kanji
    numerals before 丁目/番地/番/号 as digits, 丁目/番地/番/号 as hyphens
    (みまもり町一丁目２番地３号 → みまもり町1-2-3)."""
    t = nfkc(text)
    if not t:
        return ""
    t = no_spaces(t).translate(_TO_HYPHEN)
    t = _KANSUJI_NUM.sub(lambda m: _kansuji_to_int(m.group(1)), t)
    t = _CHOME.sub(lambda m: m.group(1) + "-", t)
    t = re.sub(r"-+", "-", t).rstrip("-")
    return no_spaces(unicodedata.normalize("NFKC", fold_variants(t)))
