from __future__ import annotations

from datetime import date

import pytest

from consent.testing import give_consent


def csv_bytes(header: str, *rows: str, encoding: str = "utf-8") -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode(encoding)


@pytest.fixture
def kids(make, session):
    """Four children of one class: twins (consented one, other not), a sibling, and another."""
    klass = make.school_class(grade=3)
    a = make.child(klass, student_no="S0001", atena_no="A0001", name="髙橋 花子", name_kana="タカハシ ハナコ",
                   birth_date=date(2017, 5, 3), sex="F", address="みまもり町1-2-3")
    b = make.child(klass, student_no="S0002", atena_no="A0002", name="髙橋 桃子", name_kana="タカハシ モモコ",
                   birth_date=date(2017, 5, 3), sex="F", address="みまもり町1-2-3")
    c = make.child(klass, student_no="S0003", atena_no="A0003", name="山田 太郎", name_kana="ヤマダ タロウ",
                   birth_date=date(2017, 8, 1), sex="M", address="ひだまり町2-1")
    d = make.child(klass, student_no="S0004", atena_no="A0004", name="渡辺 健", name_kana="ワタナベ ケン",
                   birth_date=date(2016, 11, 20), sex="M", address="こもれび町3-3")
    for child in (a, c, d):
        give_consent(session, child, "data_linkage")
    session.flush()
    return {"a": a, "b": b, "c": c, "d": d}


@pytest.fixture(autouse=True)
def _inline_imports(app, request, monkeypatch):
    """Import jobs run synchronously in the request (browser tests keep the
    real background thread and the polling page)."""
    if request.node.get_closest_marker("browser") is None:
        monkeypatch.setitem(app.config, "LINKAGE_IMPORT_INLINE", True)
