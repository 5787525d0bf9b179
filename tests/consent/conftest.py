from __future__ import annotations

import pytest

from portal.auth.principal import Principal


@pytest.fixture
def as_guardian():
    def _p(guardian) -> Principal:
        return Principal(kind="guardian", id=guardian.id, role="guardian")

    return _p


@pytest.fixture
def as_staff():
    def _p(staff) -> Principal:
        return Principal(kind="staff", id=staff.id, role=staff.role.value)

    return _p
