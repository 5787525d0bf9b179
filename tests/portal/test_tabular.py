"""portal.tabular: strict reading of uploads and formula-safe CSV exports."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.tabular import (
    Column,
    TabularError,
    looks_like_formula,
    neutralise,
    read_table,
    safe_csv_rows,
    write_csv,
)

COLUMNS = [
    Column("student_no", "児童生徒番号", required=True),
    Column("name", "氏名", required=True),
    Column("birth_date", "生年月日"),
]


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.replace("\n", "\r\n").encode(encoding)


def xlsx_bytes(rows) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_reads_utf8_with_japanese_headers():
    t = read_table(csv_bytes("児童生徒番号,氏名,生年月日\nA1,山田 太郎,2015-04-01\n"), COLUMNS)
    rows = list(t)
    assert t.encoding == "utf-8" and t.format == "csv"
    assert rows[0].values == {"student_no": "A1", "name": "山田 太郎", "birth_date": "2015-04-01"}
    assert (rows[0].number, rows[0].line) == (1, 2)


def test_reads_utf8_with_bom():
    t = read_table(b"\xef\xbb\xbf" + csv_bytes("児童生徒番号,氏名\nA1,山田\n"), COLUMNS)
    assert t.encoding == "utf-8-sig"
    assert next(iter(t))["student_no"] == "A1"


def test_reads_cp932():
    t = read_table(csv_bytes("児童生徒番号,氏名\nA1,髙橋 ﾀﾛｳ\n", "cp932"), COLUMNS)
    assert t.encoding == "cp932"
    assert next(iter(t))["name"] == "髙橋 ﾀﾛｳ"


def test_english_keys_are_aliases_in_any_width_and_case():
    t = read_table(csv_bytes("ＳＴＵＤＥＮＴ_ＮＯ, Name ,birth_date\nA1,x,y\n"), COLUMNS)
    assert next(iter(t)).values == {"student_no": "A1", "name": "x", "birth_date": "y"}


def test_missing_required_column_rejects_file_naming_it():
    with pytest.raises(TabularError) as e:
        read_table(csv_bytes("児童生徒番号,生年月日\nA1,2015-04-01\n"), COLUMNS)
    assert e.value.code == "missing_column"
    assert e.value.column == "氏名"
    assert "氏名" in str(e.value)


def test_unknown_columns_reported_once():
    t = read_table(csv_bytes("児童生徒番号,氏名,備考,備考,メモ\nA1,x,a,b,c\n"), COLUMNS)
    assert t.unknown_columns == ["備考", "メモ"]


def test_duplicate_known_column_rejected():
    with pytest.raises(TabularError) as e:
        read_table(csv_bytes("児童生徒番号,氏名,name\nA1,x,y\n"), COLUMNS)
    assert e.value.code == "duplicate_column"


@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", b"\xef\xbb\xbf", b"   "])
def test_empty_file_rejected(data):
    with pytest.raises(TabularError) as e:
        read_table(data, COLUMNS)
    assert e.value.code == "empty"


def test_header_only_rejected():
    with pytest.raises(TabularError) as e:
        read_table(csv_bytes("児童生徒番号,氏名\n\n"), COLUMNS)
    assert e.value.code == "header_only"


def test_over_size_rejected_before_reading(tmp_path):
    p = tmp_path / "big.csv"
    p.write_bytes(b"a" * 2048)
    with pytest.raises(TabularError) as e:
        read_table(p, COLUMNS, max_bytes=1024)
    assert e.value.code == "too_large"
    with pytest.raises(TabularError):
        read_table(io.BytesIO(b"a" * 2048), COLUMNS, max_bytes=1024)


@pytest.mark.parametrize("data", [
    "児童生徒番号,氏名\nA1,山田\n".encode("utf-16"),
    b"\x82\xa0\xff\xfe\xfd,\x80\x80\n",
    b"student_no,name\nA1,\x81\x7f\n",
    "児童生徒番号,氏名\nA1,Müller\n".encode("latin-1", "replace") + b"\xa0",
    b"student_no,name\nA1,\x00\x01\n",
])
def test_neither_encoding_rejected(data):
    with pytest.raises(TabularError) as e:
        read_table(data, COLUMNS)
    assert e.value.code == "encoding"


def test_legacy_xls_rejected():
    with pytest.raises(TabularError) as e:
        read_table(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, COLUMNS)
    assert e.value.code == "xls"


def test_broken_xlsx_rejected():
    with pytest.raises(TabularError) as e:
        read_table(b"PK\x03\x04garbage", COLUMNS)
    assert e.value.code == "xlsx"


def test_line_numbers_skip_blank_rows_and_count_multiline_cells():
    text = '児童生徒番号,氏名\nA1,"two\nlines"\n\nA2,b\n'
    rows = list(read_table(csv_bytes(text), COLUMNS))
    assert [(r.number, r.line) for r in rows] == [(1, 2), (2, 5)]
    assert rows[0]["name"] == "two\r\nlines"


def test_short_rows_padded_and_long_rows_flagged():
    rows = list(read_table(csv_bytes("児童生徒番号,氏名\nA1\nA2,x,extra\n"), COLUMNS))
    assert rows[0].values["name"] == "" and not rows[0].issues
    assert rows[1].issues[0].code == "extra_fields" and rows[1].issues[0].line == 3


def test_formula_cells_flagged_with_line_and_column():
    rows = list(read_table(csv_bytes('児童生徒番号,氏名\nA1,"=HYPERLINK(""x"")"\nA2,-3\n'), COLUMNS))
    assert rows[0].issues[0].code == "formula"
    assert rows[0].issues[0].column == "氏名" and rows[0].issues[0].line == 2
    assert not rows[1].issues


def test_unterminated_quote_is_malformed_with_line():
    # strict=False tolerates most things; a NUL-free but unterminated quote
    # at end of file is read to the end, so the value just contains the rest.
    rows = list(read_table(csv_bytes('児童生徒番号,氏名\nA1,"abc\n'), COLUMNS))
    assert rows[0]["student_no"] == "A1"


def test_messages_translate_to_japanese(app):
    with app.test_request_context(headers={"Accept-Language": "ja"}):
        from flask_babel import force_locale

        with force_locale("ja"), pytest.raises(TabularError) as e:
            read_table(csv_bytes("児童生徒番号\nA1\n"), COLUMNS)
        with force_locale("en"):
            assert "missing" in str(e.value)


def test_xlsx_first_sheet_with_dates_and_numbers():
    data = xlsx_bytes([
        ["児童生徒番号", "氏名", "生年月日", "その他"],
        [12345, "山田", datetime(2015, 4, 1), 1.5],
        [None, None, None, None],
        ["A2", "=1+1", date(2016, 1, 2), None],
    ])
    t = read_table(data, COLUMNS)
    rows = list(t)
    assert t.format == "xlsx" and t.encoding is None and t.unknown_columns == ["その他"]
    assert rows[0].values == {"student_no": "12345", "name": "山田", "birth_date": "2015-04-01"}
    assert (rows[1].number, rows[1].line) == (2, 4)
    assert rows[1].issues[0].code == "formula"


def test_xlsx_missing_column():
    with pytest.raises(TabularError) as e:
        read_table(xlsx_bytes([["氏名"], ["x"]]), COLUMNS)
    assert e.value.column == "児童生徒番号"


def test_file_hash_is_stable():
    data = csv_bytes("児童生徒番号,氏名\nA1,x\n")
    assert read_table(data, COLUMNS).sha256 == read_table(data, COLUMNS).sha256


# -- exports --------------------------------------------------------------------


@pytest.mark.parametrize("value,expected", [
    ("=1+1", "'=1+1"), ("+81", "'+81"), ("-x", "'-x"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("山田", "山田"), (None, ""), (-3, -3), (2.5, 2.5),
    (date(2020, 1, 2), "2020-01-02"),
])
def test_neutralise(value, expected):
    assert neutralise(value) == expected


def test_write_csv_to_path_with_bom(tmp_path):
    p = tmp_path / "out.csv"
    n = write_csv(p, ["a", "b"], [["=x", 1], ["y", None]])
    assert n == 2
    raw = p.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8-sig") == "a,b\r\n'=x,1\r\ny,\r\n"


def test_csv_response_streams_neutralised(app):
    from portal.tabular import csv_response

    with app.test_request_context():
        resp = csv_response("一覧.csv", ["氏名"], [["=cmd"]])
        resp.direct_passthrough = False
        body = resp.get_data().decode("utf-8-sig")
    assert body == "氏名\r\n'=cmd\r\n"
    assert "filename*=UTF-8''" in resp.headers["Content-Disposition"]


cells = st.one_of(st.none(), st.integers(), st.text(alphabet=st.characters(codec="utf-8")))


@given(st.lists(st.lists(cells, min_size=1, max_size=5), max_size=10))
def test_property_no_exported_text_cell_starts_with_formula_prefix(rows):
    for row in safe_csv_rows(rows):
        for cell in row:
            if isinstance(cell, str):
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


@given(st.text())
def test_property_neutralise_only_prepends(value):
    out = neutralise(value)
    assert out == value or out == "'" + value


safe_text = st.text(alphabet=st.characters(codec="cp932", exclude_characters="\x00\x80\uf8f0\uf8f1\uf8f2\uf8f3¢£¬‖−〜"), max_size=20)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(safe_text, safe_text), min_size=1, max_size=8), st.sampled_from(["utf-8", "cp932"]))
def test_property_export_then_read_round_trips(rows, encoding):
    buf = io.StringIO(newline="")
    write_csv(buf, ["児童生徒番号", "氏名"], rows, bom=False)
    data = buf.getvalue().encode(encoding)
    expected = [
        (str(neutralise(a)).strip(" \t\r\n\u3000"), str(neutralise(b)).strip(" \t\r\n\u3000"))
        for a, b in rows
    ]
    expected = [e for e in expected if any(e)]
    if not expected:
        with pytest.raises(TabularError):
            read_table(data, COLUMNS, reject_formulas=False)
        return
    got = [(r["student_no"], r["name"]) for r in read_table(data, COLUMNS, reject_formulas=False)]
    assert got == expected


@given(st.text(max_size=30))
def test_property_formula_detector_agrees_with_neutralise(value):
    # Anything the importer calls a formula is neutralised on export.
    if looks_like_formula(value) and not value.startswith((" ", "\u3000", "＝", "＠", "＋", "－")):
        assert neutralise(value) != value


def test_csv_module_dialect_is_fixed_not_sniffed():
    # Semicolons are data, not separators.
    rows = list(read_table(csv_bytes("児童生徒番号,氏名\nA1;B,x;y\n"), COLUMNS))
    assert rows[0]["student_no"] == "A1;B"
    assert csv.Sniffer  # the module is there; we simply never use it
