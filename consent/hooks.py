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
  A row a guardian must not get (a child's request for help, or anything that
  would reveal one: APPI art. 78(1)(i)) carries ``WITHHELD: True``; a row whose
  values would reveal one shows neutral values and carries the true ones in
  ``RELEASED_VALUES`` (``{column: value}``). ``consent.rights.disclosure``
  drops withheld rows (or, once the data steward releases them, keeps them and
  applies the released values) and removes both keys; the download only says,
  in the same sentence every time, that something may be withheld.
* :func:`register_withheld_audit` ``(fn(action, detail) -> bool)``: audit rows
  (staff actions on a child) that would reveal a withheld record, left out of
  the disclosure's "who looked at the record" unless the steward releases.
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

WITHHELD = "_withheld"
RELEASED_VALUES = "_released_values"
SectionFn = Callable[[Session, int], list[dict]]


@dataclass(frozen=True)
class DisclosureSection:
    key: str
    title: object  # a lazy_gettext string
    fn: SectionFn


_purgers: dict[str, list[Purger]] = {}
_sections: dict[str, DisclosureSection] = {}
_register_sources: list[Callable[[], list[dict]]] = []
_withheld_audit: list[Callable[[str, dict], bool]] = []


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


def register_withheld_audit(fn: Callable[[str, dict], bool]) -> None:
    if fn not in _withheld_audit:
        _withheld_audit.append(fn)


def audit_row_withheld(action: str, detail: dict | None) -> bool:
    """Whether an audit row about a child is withheld from the family's disclosure."""
    return any(fn(action, detail or {}) for fn in _withheld_audit)


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
