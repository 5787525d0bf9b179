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
