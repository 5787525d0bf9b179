"""受入年齢 parsing (with property tests) and the 子育て施設一覧 CSV import."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.auth.principal import SYSTEM
from resources.models import Service, ServiceStatus
from resources.opendata import grade_span, import_facilities_csv, parse_age_text
from resources.service import ResourceError

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1歳10か月", (22, None)),
        ("1歳10ヶ月", (22, None)),
        ("就学前", (0, 83)),
        ("0歳～5歳", (0, 71)),
        ("０歳〜５歳", (0, 71)),
        ("小学1年生～6年生", (72, 155)),
        ("小学生", (72, 155)),
        ("中学生", (144, 191)),
        ("生後57日～就学前", (2, 83)),
        ("生後6か月から2歳", (6, 35)),
        ("3歳以上", (36, None)),
        ("3歳未満", (None, 35)),
        ("満3歳～", (36, None)),
        ("～2歳", (None, 35)),
        ("0歳～2歳、小学生", (0, 155)),
        ("産休明け～就学前", (2, 83)),
    ],
)
def test_known_forms(text, expected):
    assert parse_age_text(text) == expected


@pytest.mark.parametrize("text", ["", "どなたでも", "5歳～3歳", "小学7年生", "1歳13か月", "??"])
def test_unreadable_or_upside_down_gives_none(text):
    assert parse_age_text(text) is None


@given(st.integers(0, 17), st.integers(0, 11))
def test_years_and_months_is_the_age_from(y, m):
    assert parse_age_text(f"{y}歳{m}か月") == (y * 12 + m, None)


@given(st.integers(0, 17), st.integers(0, 17), st.sampled_from(["～", "〜", "~", "-", "から"]), st.booleans())
def test_year_ranges(a, b, sep, fullwidth):
    text = f"{a}歳{sep}{b}歳"
    if fullwidth:
        text = text.translate(FULLWIDTH)
    result = parse_age_text(text)
    if a <= b:
        assert result == (a * 12, b * 12 + 11)
    else:
        assert result is None  # upside down


@given(st.integers(1, 6), st.integers(1, 6))
def test_elementary_grade_ranges(g1, g2):
    result = parse_age_text(f"小学{g1}年生～{g2}年生")
    if g1 <= g2:
        assert result == (grade_span(g1)[0], grade_span(g2)[1])
    else:
        assert result is None


@given(st.text(max_size=30))
def test_never_raises_and_never_upside_down(text):
    result = parse_age_text(text)
    if result is not None:
        lo, hi = result
        assert lo is None or lo >= 0
        assert lo is None or hi is None or lo <= hi


CSV = (
    "都道府県コード又は市区町村コード,NO,名称,名称_カナ,名称_英字,施設種別,所在地_連結表記,緯度,経度,電話番号,"
    "団体名,利用可能曜日,開始時間,終了時間,受入年齢,URL,備考\r\n"
    "999991,1,ひだまり児童館,ヒダマリジドウカン,Hidamari Children's Hall,児童館,石川県みまもり市ひだまり町1-1,36.3,136.3,"
    "0761-11-1111,みまもり市,月～金,10:00,18:00,0歳～18歳,https://example.invalid/a,<script>alert(1)</script>雨の日も開館\r\n"
    "999991,2,こもれび保育園,コモレビホイクエン,,保育所,石川県みまもり市こもれび町2-2,,,0761-22-2222,,,,,1歳10か月,,\r\n"
    "999991,3,なぞの施設,,,,石川県みまもり市,,,,,,,,いつでも,,\r\n"
    "999991,4,,,,,,,,,,,,,,,\r\n"
)


def test_import_creates_drafts_with_ages_schedules_and_sanitised_text(session):
    result = import_facilities_csv(session, SYSTEM, CSV.encode("utf-8-sig"))
    assert result.created == 3 and result.skipped == 1
    assert [line for line, _ in result.problems] == [4, 5]  # unreadable ages; no name
    hall = session.query(Service).filter_by(name_ja="ひだまり児童館").one()
    assert hall.status == ServiceStatus.draft
    assert (hall.min_age_months, hall.max_age_months) == (0, 18 * 12 + 11)
    assert hall.category_codes == ["after_school"]
    assert hall.schedules[0].byday == "MO,TU,WE,TH,FR"
    assert hall.description_ja == "雨の日も開館"
    assert hall.latitude == pytest.approx(36.3)
    nursery = session.query(Service).filter_by(name_ja="こもれび保育園").one()
    assert (nursery.min_age_months, nursery.max_age_months) == (22, None)


def test_import_reads_shift_jis_and_is_idempotent(session):
    raw = CSV.replace("<script>alert(1)</script>", "").encode("cp932")
    assert import_facilities_csv(session, SYSTEM, raw).created == 3
    again = import_facilities_csv(session, SYSTEM, raw)
    assert again.created == 0 and again.skipped == 4


def test_a_file_without_a_name_column_is_refused_clearly(session):
    with pytest.raises(ResourceError) as exc:
        import_facilities_csv(session, SYSTEM, b"a,b\r\n1,2\r\n")
    assert "名称" in str(exc.value.message)


def test_recommended_dataset_columns_accessibility_schedule_note_and_a_too_long_row(session):
    header = "名称,住所,方書,利用可能曜日,開始時間,終了時間,利用可能日時特記事項,説明,バリアフリー情報,受入年齢\r\n"
    rows = ("ひろば,石川県みまもり市1-1,2階,土日,9:00,12:00,祝日は休み,親子で遊べます,エレベーターあり,就学前\r\n"
            "相談室,石川県みまもり市2-2,,,,,予約制,,,\r\n"
            + "長い名前" * 60 + ",石川県みまもり市3-3,,,,,,,,\r\n")
    result = import_facilities_csv(session, SYSTEM, (header + rows).encode())
    assert result.created == 2 and result.skipped == 1 and [line for line, _ in result.problems] == [4]
    hiroba = session.query(Service).filter_by(name_ja="ひろば").one()
    assert hiroba.address == "石川県みまもり市1-1 2階" and hiroba.accessibility_ja == "エレベーターあり"
    assert hiroba.schedules[0].byday == "SA,SU" and hiroba.schedules[0].description_ja == "祝日は休み"
    assert (hiroba.min_age_months, hiroba.max_age_months) == (0, 83)
    room = session.query(Service).filter_by(name_ja="相談室").one()
    assert room.description_ja == "予約制" and room.schedules == []
