"""Navigation entries that domains register for the roles that use them."""

from __future__ import annotations

from dataclasses import dataclass

from flask import url_for

from portal.auth.access import role_of


@dataclass(frozen=True)
class NavEntry:
    label: object  # a lazy_gettext string
    endpoint: str
    roles: frozenset[str]
    order: int = 100


_entries: list[NavEntry] = []


def register(label, endpoint: str, roles, order: int = 100) -> None:
    entry = NavEntry(label, endpoint, frozenset(roles), order)
    if entry not in _entries:
        _entries.append(entry)


def entries_for(user) -> list[tuple[str, str]]:
    role = role_of(user)
    return [
        (str(e.label), url_for(e.endpoint))
        for e in sorted(_entries, key=lambda e: (e.order, e.endpoint))
        if role in e.roles
    ]
