"""portal.transactions.command_transaction: commit, refusal, failure."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.people.models import School, SchoolKind
from portal.transactions import command_transaction


class Refused(Exception):
    pass


def _schools(session) -> int:
    session.rollback()
    return session.scalar(select(func.count(School.id)))


def test_the_work_is_committed(session):
    with command_transaction(session, Refused, str):
        session.add(School(code="T001", name="見守り小", kind=SchoolKind.elementary))
    assert _schools(session) == 1


def test_a_refusal_rolls_back_says_why_and_exits_non_zero(session, capsys):
    with pytest.raises(SystemExit) as exit_, command_transaction(session, Refused, lambda e: f"refused: {e}", exit_code=2):
        session.add(School(code="T001", name="見守り小", kind=SchoolKind.elementary))
        session.flush()
        raise Refused("列がありません")
    assert exit_.value.code == 2
    assert capsys.readouterr().err == "refused: 列がありません\n"
    assert _schools(session) == 0


def test_any_other_error_rolls_back_and_goes_through(session):
    with pytest.raises(ZeroDivisionError), command_transaction(session, Refused, str):
        session.add(School(code="T001", name="見守り小", kind=SchoolKind.elementary))
        session.flush()
        1 / 0  # noqa: B018
    assert _schools(session) == 0
