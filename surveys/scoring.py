"""Checking answers against an instrument and scoring them (no database here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from surveys.instruments import Instrument, Item


@dataclass
class Checked:
    answers: dict[str, int | list[int]] = field(default_factory=dict)  # choice values only
    free_text: dict[str, str] = field(default_factory=dict)
    errors: dict[str, object] = field(default_factory=dict)  # item id -> message (lazy)

    @property
    def ok(self) -> bool:
        return not self.errors


def _as_list(raw) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list | tuple):
        return [str(r) for r in raw]
    return [str(raw)]


def check_item(item: Item, raw, *, partial: bool = False) -> tuple[object, object | None]:
    """(value or None, error or None) for one item's raw form value(s)."""
    values = [v.strip() for v in _as_list(raw) if v is not None and str(v).strip() != ""]
    if item.type == "text":
        text = values[0] if values else ""
        if len(text) > item.max_length:
            return None, _l("Please write at most %(n)d characters.", n=item.max_length)
        return (text or None), None
    if not values:
        if item.required and not partial:
            return None, _l("Please choose an answer.")
        return None, None
    try:
        ints = [int(v) for v in values]
    except ValueError:
        return None, _l("That answer is not one of the choices.")
    if any(item.option(v) is None for v in ints):
        return None, _l("That answer is not one of the choices.")
    if item.type == "choice":
        if len(ints) > 1:
            return None, _l("Please choose only one answer.")
        return ints[0], None
    return sorted(set(ints)), None


def check(inst: Instrument, grade: int | None, raw: Mapping, *, partial: bool = False) -> Checked:
    """Check every item that applies to this grade; unknown keys are ignored."""
    out = Checked()
    for item in inst.items_for(grade):
        value, error = check_item(item, raw.get(item.id), partial=partial)
        if error is not None:
            out.errors[item.id] = error
        elif value is None:
            continue
        elif item.type == "text":
            out.free_text[item.id] = value
        else:
            out.answers[item.id] = value
    return out


@dataclass(frozen=True)
class Score:
    score: float | None
    low: bool
    critical: bool
    help: bool
    flags: int


def score(inst: Instrument, answers: Mapping[str, int | list[int]]) -> Score:
    critical = help_ = False
    flags = 0
    for item in inst.items:
        if item.type == "text" or item.id not in answers:
            continue
        chosen = answers[item.id]
        for v in chosen if isinstance(chosen, list) else [chosen]:
            opt = item.option(v)
            critical |= bool(opt and opt.critical)
            help_ |= bool(opt and opt.help)
            flags += int(bool(opt and opt.flag))
    method = inst.score["method"]
    if method == "item":
        value = answers.get(inst.score["item"])
        s = float(value) if isinstance(value, int) else None
    elif method == "sum_times":
        values = [answers.get(i.id) for i in inst.items if i.type == "choice"]
        s = float(sum(values) * inst.score["factor"]) if all(isinstance(v, int) for v in values) else None
    else:  # count_flags
        s = float(flags)
    threshold = inst.low_threshold
    low = s is not None and threshold is not None and s <= threshold
    return Score(s, low, critical, help_, flags)
