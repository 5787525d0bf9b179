from __future__ import annotations

from datetime import time

import pytest

from portal.auth.principal import SYSTEM
from resources import service as catalogue
from resources.service import ScheduleData, ServiceData


@pytest.fixture
def make_service(session):
    """A catalogue entry (published unless told otherwise)."""

    def _make(name_ja="子ども食堂ひだまり", *, publish=True, **kw):
        kw.setdefault("name_en", "Hidamari Children's Cafeteria")
        kw.setdefault("description_ja", "毎週水曜日にみんなで夕ごはん。")
        kw.setdefault("description_en", "Dinner together every Wednesday.")
        kw.setdefault("categories", ["childrens_cafeteria"])
        kw.setdefault("address", "石川県みまもり市ひだまり町1-2-3")
        kw.setdefault("phone", "0761-00-0000")
        kw.setdefault("schedules", [ScheduleData("WEEKLY", "WE", time(17, 0), time(19, 0), "夕食", "Dinner")])
        s = catalogue.save_service(session, SYSTEM, ServiceData(name_ja=name_ja, **kw))
        if publish:
            catalogue.publish(session, SYSTEM, s)
        return s

    return _make


@pytest.fixture
def english(app):
    """Messages outside a page read in English (the default locale is Japanese)."""
    from flask_babel import force_locale

    with app.test_request_context(), force_locale("en"):
        yield


@pytest.fixture
def count_queries(db):
    """Context manager counting the SQL statements run inside it."""
    from contextlib import contextmanager

    from sqlalchemy import event

    @contextmanager
    def _count():
        box = {"n": 0, "sql": []}

        def _on(conn, cursor, statement, *_a, **_k):
            box["n"] += 1
            box["sql"].append(statement[:160])

        event.listen(db.engine, "before_cursor_execute", _on)
        try:
            yield box
        finally:
            event.remove(db.engine, "before_cursor_execute", _on)

    return _count
