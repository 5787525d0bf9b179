from __future__ import annotations

import pytest

from . import processes


@pytest.fixture(autouse=True)
def _no_process_left_behind():
    """A failing fault test must not leave its paused process holding the database."""
    yield
    while processes.started:
        processes.reap(processes.started.pop())
