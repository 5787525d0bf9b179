"""Import of the municipal open-data 子育て施設一覧 CSV (推奨データセット).

The file is read with the standard ``csv`` module in the dialect the
recommended dataset prescribes (comma separated, double quotes), UTF-8 (with
or without BOM) or Shift_JIS (cp932). Headers are matched by name, so the
column order may vary. Every row becomes a *draft*: a coordinator checks it
and publishes it.

受入年齢 (ages accepted) is free text; :func:`parse_age_text` turns the usual
forms into a range of whole months.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import time

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.principal import Principal
from resources.models import Service
from resources.service import ResourceError, ScheduleData, ServiceData, plain_text, save_service

# -- 受入年齢 ------------------------------------------------------------------------

PRESCHOOL = (0, 6 * 12 + 11)  # 就学前: up to the April after turning six
_SCHOOL_STAGE = {"小学生": (1, 6), "中学生": (7, 9), "高校生": (10, 12)}
_RANGE_SEP = re.compile(r"[~〜～〰ー―−‐\-–—]|から")
_LIST_SEP = re.compile(r"[、,・/／]|及び|および")
_MONTHS = re.compile(r"(?:ヶ|ケ|カ|ヵ|か|箇|個)月")
_POINT = re.compile(r"^(?:生後)?(?:(\d{1,2})歳)?(?:(\d{1,3})か月)?(?:(\d{1,3})日)?(?:児|児童)?$")
_GRADE = re.compile(r"^(小学|小|中学|中|高校|高)?(\d)年(?:生)?$")


def grade_span(grade: int) -> tuple[int, int]:
    """Ages in months of a child in a school grade (1-9 municipality-wide, 10-12 high school)."""
    return (5 + grade) * 12, (6 + grade) * 12 + 11


def _normalise(text: str) -> str:
    t = unicodedata.normalize("NFKC", text or "")
    t = re.sub(r"満(?=\d)", "", re.sub(r"\s+", "", t)).replace("の子", "").replace("のお子さん", "")
    t = _MONTHS.sub("か月", t)
    return t


def _term(term: str, stage: str | None) -> tuple[tuple[int, int], str | None, bool] | None:
    """(lo, hi) months of one term, the school stage it names, whether it is an exact point."""
    if not term:
        return None
    if term in ("就学前", "未就学", "未就学児", "乳幼児", "就学前児童"):
        return PRESCHOOL, None, False
    if term in ("産休明け", "産後休暇明け"):
        return (2, 2), None, True
    if term in ("乳児",):
        return (0, 11), None, False
    if term in ("幼児",):
        return (12, PRESCHOOL[1]), None, False
    if term in _SCHOOL_STAGE:
        a, b = _SCHOOL_STAGE[term]
        return (grade_span(a)[0], grade_span(b)[1]), term[:2], False
    m = _GRADE.match(term)
    if m:
        prefix = {"小": "小学", "中": "中学", "高": "高校"}.get(m.group(1) or "", m.group(1)) or stage or "小学"
        g = int(m.group(2))
        offset = {"小学": 0, "中学": 6, "高校": 9}[prefix]
        if not 1 <= g <= (6 if prefix == "小学" else 3):
            return None
        return grade_span(g + offset), prefix, False
    m = _POINT.match(term)
    if m and any(m.groups()):
        years, months, days = (int(x) if x else 0 for x in m.groups())
        if months >= 12 and m.group(1):
            return None
        total = years * 12 + months + (-(-days // 30) if days else 0)
        if m.group(1) and not m.group(2) and not m.group(3):
            return (total, total + 11), None, False  # "3歳": the whole year of age
        return (total, total), None, True
    return None


def _segment(seg: str) -> tuple[int | None, int | None] | None:
    if not seg:
        return None
    qualifier = None
    for q in ("以上", "以下", "未満", "まで"):
        if seg.endswith(q):
            qualifier, seg = q, seg[: -len(q)]
            break
    parts = _RANGE_SEP.split(seg)
    if len(parts) > 2:
        return None
    if len(parts) == 2:
        left, right = parts
        lt = _term(left, None)
        if left and lt is None:
            return None
        rt = _term(right, lt[1] if lt else None)
        if right and rt is None:
            return None
        if lt is None and rt is None:
            return None
        # Upside down: the left starts after the right does (a right term such as
        # 就学前 that spans from birth only needs the left to start before its end).
        if lt and rt and (lt[0][0] > rt[0][1] or (rt[0][0] > 0 and lt[0][0] > rt[0][0])):
            return None
        lo = lt[0][0] if lt else None
        hi = rt[0][1] if rt else None
        if qualifier == "未満" and rt:
            hi = rt[0][0] - 1
        if lo is not None and hi is not None and lo > hi:
            return None
        return lo, hi
    t = _term(seg, None)
    if t is None:
        return None
    (lo, hi), _stage, exact = t
    if qualifier == "以上":
        return lo, None
    if qualifier in ("以下", "まで"):
        return None, hi
    if qualifier == "未満":
        return (None, lo - 1) if lo > 0 else None
    if exact:
        return lo, None  # 「1歳10か月」 alone: the age from which children are accepted
    return lo, hi


def parse_age_text(text: str | None) -> tuple[int | None, int | None] | None:
    """受入年齢 text to (minimum, maximum) in whole months, None where open or unreadable.

    Returns None when the text cannot be read (or reads upside down). Forms:
    「1歳10か月」 (from that age), 「0歳～5歳」, 「生後57日～就学前」,
    「小学1年生～6年生」, 「小学生」, 「3歳以上」, 「3歳未満」, lists joined by 「、」.
    """
    t = _normalise(text or "")
    if not t:
        return None
    bounds = []
    for seg in _LIST_SEP.split(t):
        if not seg:
            continue
        r = _segment(seg)
        if r is None:
            return None
        bounds.append(r)
    if not bounds:
        return None
    lo = None if any(b[0] is None for b in bounds) else min(b[0] for b in bounds)
    hi = None if any(b[1] is None for b in bounds) else max(b[1] for b in bounds)
    if lo == 0:
        lo = 0
    if lo is not None and hi is not None and lo > hi:
        return None
    return lo, hi


# -- the CSV -----------------------------------------------------------------------------

COLUMNS = {
    "name": ("名称", "施設名", "子育て施設名", "施設名称"),
    "name_en": ("名称_英字", "名称(英字)", "施設名_英字"),
    "kind": ("施設種別", "子育て施設種別", "種別", "種類"),
    "address": ("所在地_連結表記", "住所", "所在地", "所在地_全国地方公共団体コード以下"),
    "lat": ("緯度",),
    "lon": ("経度",),
    "phone": ("電話番号",),
    "url": ("URL", "ホームページ"),
    "ages": ("受入年齢", "対象年齢"),
    "days": ("利用可能曜日", "開設曜日"),
    "opens": ("開始時間", "開館時間"),
    "closes": ("終了時間", "閉館時間"),
    "notes": ("説明", "備考"),
    "schedule_note": ("利用可能日時特記事項",),
    "accessibility": ("バリアフリー情報",),
    "address_extra": ("方書",),
    "org": ("団体名", "設置者", "運営者"),
    "postal": ("郵便番号",),
}
_KIND_CATEGORIES = [
    (("子ども食堂", "こども食堂", "子供食堂"), "childrens_cafeteria"),
    (("放課後", "学童", "児童館", "児童クラブ", "児童センター"), "after_school"),
    (("学習支援", "学習"), "study_support"),
    (("相談",), "counselling"),
    (("保健", "医療", "健康"), "health"),
    (("障害", "障がい", "療育", "発達"), "disability"),
]
_DAY_CHARS = {"月": "MO", "火": "TU", "水": "WE", "木": "TH", "金": "FR", "土": "SA", "日": "SU"}


@dataclass
class ImportResult:
    created: int = 0
    skipped: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, message)


def decode(raw: bytes) -> str:
    for enc in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise ResourceError(_l("The file is neither UTF-8 nor Shift_JIS text."))


def _category(kind: str) -> str:
    for words, code in _KIND_CATEGORIES:
        if any(w in kind for w in words):
            return code
    return "childcare"


def _days(text: str) -> str:
    t = unicodedata.normalize("NFKC", text or "")
    if "平日" in t:
        return "MO,TU,WE,TH,FR"
    m = re.match(r"^([月火水木金土日])[~〜～\-]([月火水木金土日])$", t.replace("曜", "").replace("日曜", "日"))
    order = list(_DAY_CHARS)
    if m:
        a, b = order.index(m.group(1)), order.index(m.group(2))
        if a <= b:
            return ",".join(_DAY_CHARS[d] for d in order[a : b + 1])
    return ",".join(dict.fromkeys(_DAY_CHARS[c] for c in t.replace("曜日", "").replace("曜", "") if c in _DAY_CHARS))


def _time(text: str) -> time | None:
    m = re.match(r"^(\d{1,2})[:時](\d{2})?", unicodedata.normalize("NFKC", text or "").strip())
    if not m or int(m.group(1)) > 23:
        return None
    return time(int(m.group(1)), int(m.group(2) or 0))


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def _getter(row: dict, col: dict):
    def get(key: str) -> str:
        return (row.get(col[key]) or "").strip() if col[key] else ""

    return get


def import_facilities_csv(session: Session, actor: Principal, raw: bytes) -> ImportResult:
    """Create a draft for every facility not already in the catalogue (same name and address)."""
    reader = csv.DictReader(io.StringIO(decode(raw), newline=""))
    headers = [h.strip() for h in (reader.fieldnames or [])]
    col = {key: next((h for h in names if h in headers), None) for key, names in COLUMNS.items()}
    if col["name"] is None:
        raise ResourceError(_l("This is not a 子育て施設一覧 CSV: there is no 名称 (name) column."))
    reader.fieldnames = headers
    result = ImportResult()
    for line, row in enumerate(reader, start=2):
        get = _getter(row, col)
        name = plain_text(get("name"))
        if not name:
            result.problems.append((line, str(_l("No name: row skipped."))))
            result.skipped += 1
            continue
        address = plain_text(" ".join(x for x in (get("address"), get("address_extra")) if x))
        if session.scalar(select(Service.id).where(Service.name_ja == name, Service.address == address)):
            result.skipped += 1
            continue
        ages = parse_age_text(get("ages")) if get("ages") else (None, None)
        if ages is None:
            result.problems.append((line, str(_l("Could not read the ages accepted: left open, please check."))))
            ages = (None, None)
        schedules = []
        days = _days(get("days"))
        description = get("notes")
        if days:
            schedules.append(ScheduleData("WEEKLY", days, _time(get("opens")), _time(get("closes")),
                                          description_ja=get("schedule_note")[:300]))
        elif get("schedule_note"):  # no days to repeat on: keep the note in the description
            description = "\n".join(x for x in (description, get("schedule_note")) if x)
        data = ServiceData(
            name_ja=name, name_en=get("name_en"), description_ja=description,
            accessibility_ja=get("accessibility")[:500],
            organization_name=get("org"), categories=[_category(get("kind"))],
            min_age_months=ages[0], max_age_months=ages[1], phone=get("phone"), url=get("url"),
            address=address, postal_code=get("postal"), location_name=name, schedules=schedules,
        )
        lat, lon = _float(get("lat")), _float(get("lon"))
        if lat is not None and lon is not None:
            data.latitude, data.longitude = lat, lon
        try:
            with session.begin_nested():
                save_service(session, actor, data)
        except ResourceError as exc:
            result.problems.append((line, str(exc.message)))
            result.skipped += 1
            continue
        result.created += 1
    session.flush()
    return result
