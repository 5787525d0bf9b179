"""Append-only, hash-chained audit log: keyed chain, sequencer, signed checkpoints."""

from flask_babel import lazy_gettext as _l


def init_app(app) -> None:
    from portal import nav
    from portal.people.models import Role
    from portal.scheduler import register_job

    nav.register(_l("Audit log"), "audit.log", (Role.data_steward.value,), 70)
    register_job("audit.sequence", "portal.audit.jobs:sequence", {"trigger": "interval", "minutes": 1})
    _sequence_after_each_response(app)
    register_job("audit.checkpoint", "portal.audit.jobs:checkpoint", {"trigger": "interval", "hours": 1})


def _sequence_after_each_response(app) -> None:
    """Audit rows a request committed are chained once its response has been sent."""
    from flask import g

    @app.before_request
    def _collect():
        g.audit_sequence_on_close = set()

    @app.after_request
    def _after(resp):
        engines = g.pop("audit_sequence_on_close", None) or set()
        if engines:
            resp.call_on_close(lambda: _sequence(app, engines))
        return resp  # a commit after this point (rare) chains at once: the set is gone

    @app.teardown_request
    def _teardown(exc):
        engines = g.pop("audit_sequence_on_close", None)
        if engines:  # no response was made (an error): chain now
            _sequence(app, engines)


def _sequence(app, engines) -> None:
    from portal.audit.service import sequence_soon

    with app.app_context():
        for engine in engines:
            sequence_soon(engine)
