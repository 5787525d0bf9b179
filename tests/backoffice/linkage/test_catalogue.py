"""The data item catalogue (利用データ項目): every source of the import
contract, which columns are kept and why, who holds them, how long."""

from __future__ import annotations

import pytest

from backoffice.linkage import catalogue
from backoffice.linkage.hooks import _file_register

#: The contract's sources and required columns (../shared/admin-data-formats.md).
CONTRACT = {
    "roster": {"児童生徒番号", "氏名", "生年月日", "学校コード", "学年"},
    "juki": {"宛名番号", "氏名", "生年月日"},
    "jidou_teate": {"氏名", "生年月日"},
    "jidou_fuyou": {"氏名", "生年月日", "支給区分"},
    "shugaku_enjo": {"氏名", "生年月日", "認定区分"},
    "seikatsu_hogo": {"氏名", "生年月日", "保護開始日"},
    "kyushoku": {"児童生徒番号", "滞納月数", "基準日"},
    "attendance": {"児童生徒番号", "対象年月", "授業日数", "欠席日数"},
    "health": {"児童生徒番号", "受診日", "受診状況"},
    "boshi": {"氏名", "生年月日", "健診種別", "受診状況"},
    "external": {"氏名", "生年月日", "情報区分"},
}


def test_every_contract_source_is_declared_with_its_required_columns():
    cat = catalogue.load()
    assert set(cat.sources) == set(CONTRACT)
    for key, required in CONTRACT.items():
        spec = cat.source(key)
        assert {c.header for c in spec.columns if c.required} == required, key
        assert spec.name["ja"] and spec.name["en"] and spec.purpose["ja"] and spec.department["ja"]
        assert all(c.en for c in spec.columns), key


def test_identifying_columns_are_never_kept_with_a_linked_record():
    for spec in catalogue.load().linkable:
        kept = {c.key for c in spec.kept}
        assert not kept & {"name", "name_kana", "birth_date", "address", "atena_no", "student_no"}, spec.key
        assert spec.retention_months > 0


def test_the_file_register_lists_what_is_kept_from_each_source():
    entries = {e["name"]: e for e in _file_register()}
    teate = entries["児童手当"]
    assert teate["items"] == ["支給状況", "認定日"] and teate["retention"] == "24か月"
    assert teate["source"] == "子育て支援課" and teate["purpose_code"] == "data_linkage"


@pytest.mark.parametrize("bad,message", [
    ({"keep": "maybe"}, "keep"),
    ({"type": "colour"}, "unknown type"),
])
def test_a_wrong_catalogue_entry_is_refused(bad, message):
    data = {"sources": {"x": {"name": {"ja": "x"}, "department": {"ja": "x"}, "purpose": {"ja": "x"},
                              "columns": [{"key": "a", "header": "A", **bad}]}}}
    with pytest.raises(catalogue.CatalogueError, match=message):
        catalogue.parse(data)


def test_date_column_must_be_a_column():
    data = {"sources": {"x": {"name": {"ja": "x"}, "department": {"ja": "x"}, "purpose": {"ja": "x"},
                              "date_column": "nope", "columns": [{"key": "a", "header": "A"}]}}}
    with pytest.raises(catalogue.CatalogueError, match="date_column"):
        catalogue.parse(data)
