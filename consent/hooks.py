"""Where other domains plug into consent, without consent importing them.

Consent depends on the kernel only. A domain that holds data for a purpose,
or that has something to show in a disclosure or the file register, registers
a function here from its package's ``init_app(app)`` (or at import time):

* :func:`register_purger` ``(purpose_code, fn(session, child_ids) -> dict[str, int])``:
  called when a withdrawal takes effect (at once when the purpose's retention
  window is 0, else by the purge job). It deletes, set-based, what the domain
  holds for those children *for that purpose* (and closes open cases tied to
  it with the reason "consent withdrawn"), flushes, never commits, and returns
  counts by kind (``{"linked_records": 3}``) for the audit row.
* :func:`register_disclosure_section` ``(key, title_lazy, fn(session, child_id) -> list[dict])``:
  a section of the disclosure download (開示). Rows are plain JSON values
  (str, int, float, bool, None, ISO dates as str); never staff names.
* :func:`register_file_register_source` ``(fn() -> list[dict])``: entries of the
  personal-information file register (個人情報ファイル簿). Each dict has
  ``name``, ``purpose_code`` (or None), ``items`` (list of str), ``source``,
  ``retention`` and optionally ``count_hint``; strings may be lazy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

Purger = Callable[[Session, list[int]], dict[str, int]]
SectionFn = Callable[[Session, int], list[dict]]


@dataclass(frozen=True)
class DisclosureSection:
    key: str
    title: object  # a lazy_gettext string
    fn: SectionFn


_purgers: dict[str, list[Purger]] = {}
_sections: dict[str, DisclosureSection] = {}
_register_sources: list[Callable[[], list[dict]]] = []


def register_purger(purpose_code: str, fn: Purger) -> None:
    fns = _purgers.setdefault(purpose_code, [])
    if fn not in fns:
        fns.append(fn)


def purgers_for(purpose_code: str) -> list[Purger]:
    return list(_purgers.get(purpose_code, []))


def register_disclosure_section(key: str, title, fn: SectionFn) -> None:
    _sections[key] = DisclosureSection(key, title, fn)


def disclosure_sections() -> list[DisclosureSection]:
    return list(_sections.values())


def register_file_register_source(fn: Callable[[], list[dict]]) -> None:
    if fn not in _register_sources:
        _register_sources.append(fn)


def file_register_entries() -> list[dict]:
    rows: list[dict] = []
    for fn in _register_sources:
        rows.extend(fn())
    return rows


def unregister_purger(purpose_code: str, fn: Purger) -> None:
    """For tests."""
    if fn in _purgers.get(purpose_code, []):
        _purgers[purpose_code].remove(fn)
