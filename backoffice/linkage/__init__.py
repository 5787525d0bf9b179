"""Linking administrative data to consented children (名寄せ)."""

from __future__ import annotations


def init_app(app) -> None:
    from flask_babel import lazy_gettext as _l

    from portal import nav

    from . import hooks, jobs

    hooks.register()
    jobs.register_jobs()
    nav.register(_l("Data linkage"), "linkage.imports", ("data_steward",), 40)
