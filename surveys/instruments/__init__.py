"""Instruments: versioned definitions kept beside this module, one YAML file each.

A definition holds the items and answer scales per locale, the grades it is
for, and how it is scored. Files are validated against :data:`SCHEMA` when
loaded, so a broken definition fails at start-up and in the tests, never in
front of a child.

Japanese text may carry readings as ``{漢字|よみ}``; :func:`render_text`
turns them into ``<ruby>`` for grades 1-3 and drops them for older children.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import jsonschema
import yaml
from markupsafe import Markup, escape

HERE = Path(__file__).resolve().parent
FILES = {"mood": "mood_checkin.yaml", "who5": "who5.yaml", "family": "family_environment.yaml"}
RUBY_MAX_GRADE = 3
ONE_PER_SCREEN_MAX_GRADE = 3

_localized = {
    "type": "object",
    "required": ["en", "ja"],
    "properties": {"en": {"type": "string"}, "ja": {"type": "string"}},
}
SCHEMA = {
    "type": "object",
    "required": ["code", "version", "respondent", "grades", "validated", "title", "score", "items"],
    "properties": {
        "code": {"type": "string", "pattern": "^[a-z0-9_]+$"},
        "version": {"type": "string"},
        "respondent": {"enum": ["student", "guardian"]},
        "grades": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9}, "minItems": 2, "maxItems": 2},
        "validated": {"type": "boolean"},
        "title": _localized,
        "intro": _localized,
        "score": {
            "type": "object",
            "required": ["method"],
            "properties": {"method": {"enum": ["item", "sum_times", "count_flags"]}},
        },
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "text"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z0-9_]+$"},
                    "type": {"enum": ["choice", "multi", "text"]},
                    "required": {"type": "boolean"},
                    "min_grade": {"type": "integer"},
                    "max_length": {"type": "integer", "minimum": 1},
                    "text": _localized,
                    "options": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["value", "label"],
                            "properties": {
                                "value": {"type": "integer"},
                                "label": _localized,
                                "icon": {"type": "string", "pattern": "^[a-z]+$"},
                                "critical": {"type": "boolean"},
                                "help": {"type": "boolean"},
                                "flag": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
    },
}

_RUBY = re.compile(r"\{([^{}|]+)\|([^{}|]+)\}")


def render_text(text: str, *, ruby: bool) -> Markup:
    """Escape ``text`` and render its ``{base|reading}`` marks as ruby (or drop the readings)."""
    out: list[Markup] = []
    pos = 0
    for m in _RUBY.finditer(text):
        out.append(escape(text[pos : m.start()]))
        if ruby:
            out.append(Markup("<ruby>{}<rp>(</rp><rt>{}</rt><rp>)</rp></ruby>").format(m.group(1), m.group(2)))
        else:
            out.append(escape(m.group(1)))
        pos = m.end()
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def plain_text(text: str) -> str:
    return _RUBY.sub(lambda m: m.group(1), text)


@dataclass(frozen=True)
class Option:
    value: int
    label: dict[str, str]
    icon: str | None = None
    critical: bool = False
    help: bool = False
    flag: bool = False


@dataclass(frozen=True)
class Item:
    id: str
    type: str
    text: dict[str, str]
    required: bool = True
    min_grade: int = 1
    max_length: int = 500
    options: tuple[Option, ...] = ()

    def applies_to(self, grade: int | None) -> bool:
        return grade is None or grade >= self.min_grade

    def option(self, value: int) -> Option | None:
        return next((o for o in self.options if o.value == value), None)


@dataclass(frozen=True)
class Instrument:
    code: str
    version: str
    respondent: str
    grades: tuple[int, int]
    validated: bool
    title: dict[str, str]
    intro: dict[str, str]
    score: dict
    items: tuple[Item, ...]
    wording: dict[str, str] = field(default_factory=dict)

    def items_for(self, grade: int | None) -> list[Item]:
        return [i for i in self.items if i.applies_to(grade)]

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)

    def for_grade(self, grade: int) -> bool:
        return self.grades[0] <= grade <= self.grades[1]

    @property
    def low_threshold(self) -> float | None:
        return self.score.get("low_at_or_below")


def parse(data: dict) -> Instrument:
    jsonschema.validate(data, SCHEMA)
    items = []
    for raw in data["items"]:
        opts = tuple(Option(**o) for o in raw.get("options", ()))
        if raw["type"] != "text" and not opts:
            raise ValueError(f"item {raw['id']} needs options")
        items.append(
            Item(
                id=raw["id"],
                type=raw["type"],
                text=raw["text"],
                required=raw.get("required", True),
                min_grade=raw.get("min_grade", 1),
                max_length=raw.get("max_length", 500),
                options=opts,
            )
        )
    ids = [i.id for i in items]
    if len(ids) != len(set(ids)):
        raise ValueError(f"instrument {data['code']} repeats an item id")
    return Instrument(
        code=data["code"],
        version=data["version"],
        respondent=data["respondent"],
        grades=tuple(data["grades"]),
        validated=data["validated"],
        title=data["title"],
        intro=data.get("intro", {"en": "", "ja": ""}),
        score=data["score"],
        items=tuple(items),
        wording=data.get("wording", {}),
    )


@cache
def get(code: str) -> Instrument:
    """The current definition of an instrument (KeyError if there is none)."""
    path = HERE / FILES[code]
    with path.open(encoding="utf-8") as fh:
        inst = parse(yaml.safe_load(fh))
    if inst.code != code:
        raise ValueError(f"{path.name} declares code {inst.code!r}, expected {code!r}")
    return inst


def all_instruments() -> list[Instrument]:
    return [get(code) for code in FILES]


def localized(text: dict[str, str], locale: str | None) -> str:
    return text.get(locale or "ja") or text["ja"]
