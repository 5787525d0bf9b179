"""Paper consent: one form, a file of forms, the command line."""

from __future__ import annotations

from datetime import date

import pytest

from consent import service
from consent.gate import is_consented
from consent.paper import import_paper, parse_date, record_paper
from consent.testing import ensure_purposes
from portal.auth.principal import SYSTEM

HEADER = "児童生徒番号,同意者区分,同意者氏名,目的コード,同意区分,日付,書面番号\n"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2025-04-01", date(2025, 4, 1)),
        ("2025/4/1", date(2025, 4, 1)),
        ("20250401", date(2025, 4, 1)),
        ("令和7年4月1日", date(2025, 4, 1)),
        ("R7.4.1", date(2025, 4, 1)),
        ("平成31年4月30日", date(2019, 4, 30)),
        ("令和元年5月1日", date(2019, 5, 1)),
        ("２０２５－０４－０１", date(2025, 4, 1)),
        ("2025-02-30", None),
        ("yesterday", None),
    ],
)
def test_parse_date(text, expected):
    assert parse_date(text) == expected


def test_one_paper_form_is_recorded_with_its_form_number(session, make):
    child = make.child(grade=4, student_no="E20190001")
    ensure_purposes(session)
    ev, created = record_paper(session, SYSTEM, student_no="Ｅ２０１９０００１", party="保護者", purpose_code="data_linkage",
                               action="同意", signed_on="R7.4.10", form_no="F-001", signer="見守 花子")
    assert created and ev.channel.value == "paper" and ev.form_no == "F-001" and ev.signer == "見守 花子"
    assert is_consented(session, child.id, "data_linkage")
    again, created = record_paper(session, SYSTEM, student_no="E20190001", party="保護者", purpose_code="data_linkage",
                                  action="同意", signed_on="2025-04-10", form_no="F-001")
    assert not created and again.id == ev.id


def test_file_import_reports_unknown_child_and_purpose_and_changes_nothing_on_reimport(session, make, tmp_path):
    a = make.child(grade=4, student_no="E1")
    b = make.child(grade=8, student_no="J1")
    ensure_purposes(session)
    f = tmp_path / "paper.csv"
    f.write_text(
        HEADER
        + "E1,保護者,見守 花子,data_linkage,同意,2025-04-01,F1\n"
        + "J1,保護者,,wellbeing_survey,同意,R7.4.2,F2\n"
        + "J1,本人,,wellbeing_survey,同意,R7.4.2,F2\n"
        + "X9,保護者,,data_linkage,同意,2025-04-01,F3\n"
        + "E1,保護者,,no_such_purpose,同意,2025-04-01,F4\n"
        + "E1,保護者,,wellbeing_survey,撤回,2025-04-01,F5\n",
        encoding="utf-8",
    )
    report = import_paper(session, SYSTEM, str(f))
    assert (report.read, report.recorded, report.already) == (6, 3, 1)  # nothing to withdraw: unchanged
    lines = {line: msg for line, _c, msg in report.refused}
    assert set(lines) == {5, 6}
    assert "X9" in lines[5] and "no_such_purpose" in lines[6]
    assert is_consented(session, a.id, "data_linkage") and is_consented(session, b.id, "wellbeing_survey")
    n_events = len(service.history(session, a.id)) + len(service.history(session, b.id))
    again = import_paper(session, SYSTEM, str(f))
    assert again.recorded == 0 and again.already == 4
    assert len(service.history(session, a.id)) + len(service.history(session, b.id)) == n_events


def test_withdrawal_dated_before_its_grant_in_a_file_is_refused(session, make, tmp_path):
    child = make.child(grade=4, student_no="E1")
    ensure_purposes(session)
    f = tmp_path / "paper.csv"
    f.write_text(HEADER + "E1,保護者,,data_linkage,同意,2025-04-10,F1\nE1,保護者,,data_linkage,撤回,2025-04-01,F2\n")
    report = import_paper(session, SYSTEM, str(f))
    assert report.recorded == 1 and len(report.refused) == 1
    assert report.refused[0][0] == 3
    assert is_consented(session, child.id, "data_linkage")


def test_cli_import_paper(app, session, make, tmp_path):
    make.child(grade=4, student_no="E1")
    ensure_purposes(session)
    session.commit()
    f = tmp_path / "paper.csv"
    f.write_bytes((HEADER + "E1,保護者,,data_linkage,同意,2025-04-01,F1\nZZ,保護者,,data_linkage,同意,2025-04-01,F2\n").encode("cp932"))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["consent", "import-paper", str(f)])
    assert result.exit_code == 0, result.output
    assert "recorded: 1" in result.output and "refused: 1" in result.output and "line 3" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("児童生徒番号,目的コード\nE1,data_linkage\n")
    result = runner.invoke(args=["consent", "import-paper", str(bad)])
    assert result.exit_code != 0


def test_english_headers_and_xlsx_are_accepted(session, make, tmp_path):
    from openpyxl import Workbook

    child = make.child(grade=4, student_no="E7")
    ensure_purposes(session)
    wb = Workbook()
    ws = wb.active
    ws.append(["student_no", "party", "signer", "purpose", "action", "date", "form_no", "備考"])
    ws.append(["E7", "保護者", "見守 花子", "wellbeing_survey", "同意", "令和7年4月3日", "F-77", "メモ"])
    f = tmp_path / "paper.xlsx"
    wb.save(f)
    report = import_paper(session, SYSTEM, str(f))
    assert (report.read, report.recorded, report.refused) == (1, 1, [])
    assert report.unknown_columns == ["備考"]
    ev = service.history(session, child.id)[0]
    assert ev.form_no == "F-77" and ev.channel.value == "paper"
    assert is_consented(session, child.id, "wellbeing_survey")


def test_paper_withdrawal_signed_the_day_of_an_online_grant_takes_effect(session, make):
    from consent.models import Action, Party
    from portal.auth.principal import Principal
    from portal.i18n import TOKYO
    from portal.orm import utcnow

    child = make.child(grade=4, student_no="E8")
    g = make.guardian(child)
    p = ensure_purposes(session)["data_linkage"]
    service.record_event(session, Principal(kind="guardian", id=g.id, role="guardian"), child.id, p,
                         Party.guardian, Action.grant)
    today = utcnow().astimezone(TOKYO).date()
    ev, created = record_paper(session, SYSTEM, student_no="E8", party="保護者", purpose_code="data_linkage",
                               action="撤回", signed_on=today, form_no="W-1")
    assert created and not is_consented(session, child.id, "data_linkage")
    # Entering the same form again changes nothing.
    again, created = record_paper(session, SYSTEM, student_no="E8", party="保護者", purpose_code="data_linkage",
                                  action="撤回", signed_on=today.isoformat(), form_no="W-1")
    assert not created and again.id == ev.id


@pytest.mark.parametrize(
    "row,expected",
    [
        ("E1,先生,,data_linkage,同意,2025-04-01,F1", "「保護者」または「本人」"),
        ("E1,保護者,,data_linkage,たぶん,2025-04-01,F1", "「同意」または「撤回」"),
        ("E1,保護者,,data_linkage,同意,きのう,F1", "きのう は日付として読めません"),
        ("E1,保護者,,data_linkage,同意,2999-04-01,F1", "未来"),
    ],
)
def test_bad_rows_are_refused_with_their_line_and_nothing_is_written(session, make, tmp_path, row, expected):
    child = make.child(grade=4, student_no="E1")
    ensure_purposes(session)
    f = tmp_path / "paper.csv"
    f.write_text(HEADER + row + "\n", encoding="utf-8")
    report = import_paper(session, SYSTEM, str(f))
    assert report.recorded == 0 and len(report.refused) == 1
    line, _col, message = report.refused[0]
    assert line == 2 and expected in message
    assert service.history(session, child.id) == []


def test_a_file_in_neither_utf8_nor_cp932_is_refused_whole(app, session, make, tmp_path):
    make.child(grade=4, student_no="E1")
    ensure_purposes(session)
    session.commit()
    f = tmp_path / "paper.csv"
    f.write_bytes(HEADER.encode("utf-16"))
    result = app.test_cli_runner().invoke(args=["consent", "import-paper", str(f)])
    assert result.exit_code != 0 and "File refused" in result.output
