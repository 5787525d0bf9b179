"""Small-cell suppression: the one rule for every output an analyst sees.

Analysts see pseudonymised aggregates only, and an aggregate about one to
four children can point at a child ("the one girl in grade 3 who was
confirmed"). So every count shown to an analyst that is 1 to 4
(:data:`MIN_CELL` - 1) is suppressed (``None``, shown as "–" and "<5" in the
legend), and so is everything that would give it back:

- :func:`count`: a count, suppressed when small (0 is shown: it names no one);
- :func:`share`: a proportion of a shown denominator, suppressed when the
  denominator is small or the count it implies (``share * denominator``), or
  its complement, is small;
- :func:`partition`: rows that split a shown total (calibration bins, groups
  by sex, grade or school): a small row is suppressed, and when that leaves
  exactly one suppressed row beside a shown total, the next smallest row is
  suppressed too (complementary suppression), so no row, and no small sum
  of rows, is the total minus the others.

``tests/security/test_small_cells.py`` opens every route the analyst role can
GET and fails on any count under 5.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

MIN_CELL = 5


def is_small(n: float | int | None) -> bool:
    """1 to MIN_CELL - 1 (rounded): a count that may point at a child."""
    return n is not None and 0 < round(n) < MIN_CELL


def count(n: int | None) -> int | None:
    return None if is_small(n) else n


def share(value: float | None, denominator: int | None) -> float | None:
    """``value`` (a proportion of ``denominator``), or None when it gives back a small count."""
    if value is None or denominator is None or is_small(denominator):
        return None
    implied = value * denominator
    if is_small(implied) or is_small(denominator - implied):
        return None
    return value


def partition(rows: Iterable[dict], *, n: str = "n", keep: Sequence[str] = ("group", "from", "to"),
              total_shown: bool = True) -> list[dict]:
    """Rows splitting a total: small rows suppressed, with complementary suppression.

    A suppressed row keeps only the ``keep`` keys (its label); every other
    value is None and ``suppressed`` is True."""
    out = [dict(r) for r in rows]
    hidden = {i for i, r in enumerate(out) if is_small(r.get(n))}
    # Beside a shown total, the hidden rows add up to the total minus the shown ones:
    # hide more until that sum is neither one row nor small.
    while total_shown and hidden and (len(hidden) == 1 or is_small(sum(out[i].get(n) or 0 for i in hidden))):
        rest = sorted((r.get(n) or 0, i) for i, r in enumerate(out) if i not in hidden and r.get(n))
        if not rest:
            break
        hidden.add(rest[0][1])
    for i in hidden:
        for k in list(out[i]):
            if k not in keep:
                out[i][k] = None
        out[i]["suppressed"] = True
    return out
