from __future__ import annotations

import pytest

from . import processes


@pytest.fixture(autouse=True)
def _no_process_left_behind():
    """A failing fault test must not leave its paused process holding the database."""
    yield
    while processes.started:
        proc = processes.started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
        if proc.stdout:
            proc.stdout.close()
