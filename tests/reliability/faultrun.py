"""Run a ``flask`` command in a real process with a fault hook, for the fault tests.

    python -m tests.reliability.faultrun [--pause-on SQL --after N] [--set MODULE.ATTR=INT] -- ARGS...

runs ``flask ARGS...`` (``--app portal roster import FILE`` …) exactly as the
command line does, except that, when ``--pause-on`` is given, the process
prints ``PAUSED`` on stdout and blocks forever right after the N-th SQL
statement containing SQL: its transaction is open, half its work done, and
the test kills it there (SIGKILL, as a crash or an out-of-memory kill would).
``--set`` changes a module constant first (smaller insert chunks, so a small
file is written in several statements).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import threading


def main(argv: list[str]) -> None:
    split = argv.index("--")
    parser = argparse.ArgumentParser()
    parser.add_argument("--pause-on")
    parser.add_argument("--after", type=int, default=1)
    parser.add_argument("--set", action="append", default=[])
    opts = parser.parse_args(argv[:split])
    for assignment in opts.set:
        target, _, value = assignment.partition("=")
        module, _, attr = target.rpartition(".")
        setattr(importlib.import_module(module), attr, int(value))
    if opts.pause_on:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        seen = 0

        @event.listens_for(Engine, "after_cursor_execute")
        def _pause(conn, cursor, statement, parameters, context, executemany):
            nonlocal seen
            if opts.pause_on in statement:
                seen += 1
                if seen == opts.after:
                    print("PAUSED", flush=True)
                    threading.Event().wait()

    from flask.cli import main as flask_main

    sys.argv = ["flask", *argv[split + 1:]]
    flask_main()


if __name__ == "__main__":
    main(sys.argv[1:])
