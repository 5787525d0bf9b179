"""The command-line contract of ../shared/admin-data-formats.md, exactly:

    flask --app portal roster import FILE
    flask --app portal linkage import SOURCE FILE
    flask --app portal linkage export OUT.csv

Each import prints its report and exits non-zero only when the file as a
whole is refused; re-importing the same file changes nothing."""

from __future__ import annotations

import csv
import pathlib
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from backoffice.linkage.importer import service
from backoffice.linkage.models import ImportBatch, LinkedRecord, ReviewItem
from portal.people.models import Child

from .conftest import csv_bytes

H_TEATE = "宛名番号,氏名,氏名カナ,生年月日,受給者宛名番号,支給状況,認定日"
H_ROSTER = "児童生徒番号,宛名番号,氏名,氏名カナ,生年月日,性別,住所,学校コード,学校名,学年,組,出席番号"


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count(model.id)))


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str):
        return runner.invoke(args=list(args))

    return invoke


def test_roster_import_command_prints_report_and_skips_bad_rows(cli, session, make, tmp_path):
    make.year()
    session.commit()
    f = tmp_path / "roster.csv"
    f.write_bytes(csv_bytes(H_ROSTER, "R1,B1,山田 一郎,ﾔﾏﾀﾞ ｲﾁﾛｳ,H30.4.2,1,みまもり町1-1,E900,テスト小,2,1,1",
                            "R2,,佐藤 二子,さとう ふたこ,2018-06-01,女,,E900,テスト小,2,1,2",
                            "R3,,鈴木 三郎,,2018-13-01,男,,E900,テスト小,2,1,3", encoding="cp932"))
    result = cli("roster", "import", str(f))
    assert result.exit_code == 0, result.output
    assert "rows read: 3" in result.output
    assert "children_created 2" in result.output
    assert "invalid row: line 4, column 生年月日" in result.output
    assert count(session, Child) == 2
    again = cli("roster", "import", str(f))
    assert again.exit_code == 0 and "already imported as batch" in again.output
    assert count(session, Child) == 2 and count(session, ImportBatch) == 1


def test_roster_import_command_refuses_file_without_required_column(cli, session, make, tmp_path):
    make.year()
    session.commit()
    f = tmp_path / "roster.csv"
    f.write_bytes(csv_bytes("児童生徒番号,氏名,生年月日,学校コード", "R1,山田 一郎,2018-04-02,E900"))
    result = cli("roster", "import", str(f))
    assert result.exit_code != 0
    assert "学年" in result.output
    assert count(session, Child) == 0 and count(session, ImportBatch) == 0


def test_linkage_import_command_reports_linked_by_method_review_and_drops_by_reason(cli, session, kids, tmp_path):
    session.commit()
    f = tmp_path / "teate.csv"
    f.write_bytes(csv_bytes(
        H_TEATE,
        "A0001,高橋 花子,ﾀｶﾊｼ ﾊﾅｺ,H29.5.3,,支給中,R6.4.1",        # number, confirmed by name and birth date
        ",髙橋 桃子,タカハシ モモコ,2017-05-03,,支給中,2024-04-01",  # the twin without consent
        ",佐藤 次郎,サトウ ジロウ,2010-01-01,,支給中,2024-04-01",    # nobody in the roster
        ",やまだ たろう,,2017-08-11,,支給中,2024-04-01",            # grey zone
        "A0004,渡辺 健,,2016-02-30,,支給中,2024-04-01",             # impossible date
    ))
    result = cli("linkage", "import", "jidou_teate", str(f))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "rows read: 5" in out
    assert "linked: atena_no 1 (total 1)" in out
    assert "sent to review: 1" in out
    assert "dropped: invalid 1, no_match 1, not_consented 1" in out
    assert "invalid row: line 6, column 生年月日" in out
    assert count(session, LinkedRecord) == 2 and count(session, ReviewItem) == 1


def test_linkage_import_command_twice_changes_nothing(cli, session, kids, tmp_path):
    session.commit()
    f = tmp_path / "teate.csv"
    f.write_bytes(csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01"))
    first = cli("linkage", "import", "jidou_teate", str(f))
    assert first.exit_code == 0
    second = cli("linkage", "import", "jidou_teate", str(f))
    assert second.exit_code == 0
    assert "already imported as batch" in second.output and "nothing changed" in second.output
    assert count(session, LinkedRecord) == 1 and count(session, ImportBatch) == 1


@pytest.mark.parametrize("source,content,expected", [
    ("nonsense", csv_bytes("氏名", "x"), "nonsense"),
    ("jidou_fuyou", csv_bytes("氏名,生年月日", "x,2017-01-01"), "支給区分"),
    ("jidou_teate", "氏名\nx\n".encode("utf-16"), "UTF-8"),
    ("jidou_teate", b"", "ファイルが空です"),
    ("jidou_teate", csv_bytes(H_TEATE), "データ行がありません"),
])
def test_linkage_import_command_refused_file_exits_non_zero_and_stores_nothing(cli, session, kids, tmp_path,
                                                                                 source, content, expected):
    session.commit()
    f = tmp_path / "file.csv"
    f.write_bytes(content)
    result = cli("linkage", "import", source, str(f))
    assert result.exit_code != 0
    assert result.output.startswith("rejected:")
    assert expected in result.output
    assert count(session, ImportBatch) == 0 and count(session, LinkedRecord) == 0


def test_a_200_mb_file_is_refused_by_its_size_without_being_read(cli, session, kids, tmp_path, monkeypatch):
    f = tmp_path / "huge.csv"
    with f.open("wb") as fh:  # a sparse file: 200 MB long, almost nothing on disk
        fh.write(csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01"))
        fh.truncate(200 * 1024 * 1024)
    session.commit()
    opened = []
    real_open = pathlib.Path.open

    def spy(self, *a, **kw):
        if self == f:
            opened.append(self)
        return real_open(self, *a, **kw)

    monkeypatch.setattr(pathlib.Path, "open", spy)
    result = cli("linkage", "import", "jidou_teate", str(f))
    assert result.exit_code != 0
    assert "MB" in result.output
    assert opened == []  # refused on its size alone
    assert count(session, ImportBatch) == 0


def test_an_error_half_way_leaves_nothing_written(cli, session, kids, tmp_path, monkeypatch):
    """One transaction: records are flushed before the audit row; when that
    fails the command rolls everything back."""
    session.commit()
    f = tmp_path / "teate.csv"
    f.write_bytes(csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01",
                            ",やまだ たろう,,2017-08-11,,支給中,2024-04-01"))

    def broken(*a, **kw):
        raise RuntimeError("disk full")

    monkeypatch.setattr(service, "audit", broken)
    result = cli("linkage", "import", "jidou_teate", str(f))
    assert result.exit_code != 0
    assert count(session, ImportBatch) == 0 and count(session, LinkedRecord) == 0
    assert count(session, ReviewItem) == 0


def test_linkage_export_writes_one_row_per_stored_record(cli, session, kids, tmp_path):
    session.commit()
    f = tmp_path / "teate.csv"
    f.write_bytes(csv_bytes(H_TEATE, "A0001,高橋 花子,,2017-05-03,,支給中,2024-04-01",
                            ",やまだ たろう,,2017-08-11,,支給中,2024-04-01",
                            ",佐藤 次郎,サトウ ジロウ,2010-01-01,,支給中,2024-04-01"))
    assert cli("linkage", "import", "jidou_teate", str(f)).exit_code == 0
    g = tmp_path / "att.csv"
    g.write_bytes(csv_bytes("児童生徒番号,対象年月,授業日数,欠席日数", "S0003,R7.6,20,1", encoding="cp932"))
    assert cli("linkage", "import", "attendance", str(g)).exit_code == 0
    batches = {b.source: b.id for b in session.scalars(select(ImportBatch))}
    out = tmp_path / "out.csv"
    result = cli("linkage", "export", str(out))
    assert result.exit_code == 0 and "exported 3 records" in result.output
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["source", "batch", "source_row", "student_no", "method", "score", "status"]
    body = {(r[0], r[1], r[2], r[3], r[4], r[6]) for r in rows[1:]}
    assert body == {
        ("attendance", f"attendance-{batches['attendance']}", "1", "S0003", "student_no", "linked"),
        ("jidou_teate", f"jidou_teate-{batches['jidou_teate']}", "1", "S0001", "atena_no", "linked"),
        ("jidou_teate", f"jidou_teate-{batches['jidou_teate']}", "2", "S0003", "probabilistic", "review"),
    }
    assert all(0 <= float(r[5]) <= 1 for r in rows[1:])


def test_rollback_and_purge_commands(cli, session, kids, tmp_path):
    session.commit()
    f = tmp_path / "teate.csv"
    recent = (date.today() - timedelta(days=30)).isoformat()
    f.write_bytes(csv_bytes(H_TEATE, f"A0001,高橋 花子,,2017-05-03,,支給中,{recent}",
                            "A0003,山田 太郎,,2017-08-01,,支給中,2001-04-01"))
    assert cli("linkage", "import", "jidou_teate", str(f)).exit_code == 0
    result = cli("linkage", "purge-expired")
    assert result.exit_code == 0 and "removed 1 expired records" in result.output
    batch = session.scalar(select(ImportBatch))
    result = cli("linkage", "rollback", str(batch.id))
    assert result.exit_code == 0 and "removed 1 records" in result.output
    assert count(session, LinkedRecord) == 0
