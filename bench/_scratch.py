"""An in-process application on a scratch database, for the benchmarks that
time services and pages through the test client rather than over HTTP
(consent_gate, campaign, casework, screening).

    tmp = scratch_environment("mimamori-bench-x-")  # before anything imports portal
    app = scratch_app(tmp)                            # its tables created

The environment is set before the application is imported because some of
it is read at import (``MIMAMORI_ENV=testing`` gives the cheap password
hashes a seed of thousands of accounts needs).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

BENCH_ENCRYPTION_KEY = "Ck2eFzWPlXeQm5YH8ZGBz9V4mWvYm1p2sWgX9mK0bVQ="  # a throwaway Fernet key


def scratch_environment(prefix: str) -> Path:
    """A fresh directory for the database and the instance files; the environment the app reads."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ.setdefault("MIMAMORI_ENV", "testing")
    os.environ.setdefault("SECRET_KEY", "bench-secret")
    os.environ.setdefault("MIMAMORI_ENCRYPTION_KEY", BENCH_ENCRYPTION_KEY)
    os.environ["MIMAMORI_INSTANCE"] = str(tmp / "instance")
    return tmp


def scratch_app(tmp: Path, url: str | None = None, **config):
    """The application on ``url`` (default: a SQLite file in ``tmp``), with its tables created."""
    from portal import create_app
    from portal.extensions import db

    app = create_app({"SQLALCHEMY_DATABASE_URI": url or f"sqlite:///{tmp / 'bench.sqlite3'}",
                      "MAIL_BACKEND": "memory", "SERVER_NAME": None, **config})
    with app.app_context():
        db.create_all()
    return app
