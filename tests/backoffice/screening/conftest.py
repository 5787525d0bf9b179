"""Screening fixtures: consented children with linked records and signals."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from portal.auth.service import principal_for

AS_OF = date(2026, 7, 15)


class Records:
    """Adds linked records and survey signals the way linkage and surveys store them."""

    def __init__(self, session):
        self.s = session
        self.n = 0
        self._batch = None

    def batch(self):
        from backoffice.linkage.models import ImportBatch

        if self._batch is None:
            self._batch = ImportBatch(source="test", file_sha256="0" * 64, actor_kind="system")
            self.s.add(self._batch)
            self.s.flush()
        return self._batch

    def record(self, child, source: str, record_date: date, **data):
        from backoffice.linkage.models import LinkedRecord

        self.n += 1
        r = LinkedRecord(
            batch_id=self.batch().id, source=source, source_row=self.n, row_key=f"k{self.n}", child_id=child.id,
            method="student_no", status="linked", record_date=record_date,
            expires_on=record_date + timedelta(days=730), data=data,
        )
        self.s.add(r)
        self.s.flush()
        return r

    def attendance(self, child, month: date, school_days=20, absent=0, late=0, nurse=0):
        return self.record(child, "attendance", month, month=month.strftime("%Y-%m"), school_days=school_days,
                           days_absent=absent, days_late=late, nurse_visits=nurse)

    def signal(self, child, kind: str, days_ago: int = 1):
        from datetime import UTC, datetime, time

        from surveys.models import SurveySignal

        at = datetime.combine(AS_OF - timedelta(days=days_ago), time(3), tzinfo=UTC)
        sig = SurveySignal(child_id=child.id, kind=kind, observed_at=at)
        self.s.add(sig)
        self.s.flush()
        return sig


@pytest.fixture
def records(session):
    return Records(session)


@pytest.fixture
def as_principal():
    return principal_for


@pytest.fixture
def consented(session, make):
    """A child in a teacher's class, consented to both screening purposes."""
    from consent.testing import give_consent

    def _make(teacher_class=None, purposes=("data_linkage", "wellbeing_survey"), **kw):
        child = make.child(teacher_class, **kw)
        make.guardian(child)
        give_consent(session, child, *purposes)
        return child

    return _make


@pytest.fixture(autouse=True)
def _english_messages(app):
    """Service messages are checked in English (pages choose the user's language)."""
    from flask_babel import force_locale

    with force_locale("en"):
        yield
