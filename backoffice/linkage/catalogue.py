"""The data item catalogue (``catalogue.yaml``), loaded once into plain objects."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from portal.tabular import Column

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
KEEP_VALUES = ("yes", "match", "no")
TYPES = ("text", "id", "name", "kana", "date", "month", "sex", "int", "number", "address")


@dataclass(frozen=True)
class ColumnSpec:
    key: str
    header: str
    type: str
    keep: str  # yes | match | no
    required: bool = False
    values: tuple[str, ...] = ()
    encrypted: bool = False
    en: str = ""

    def as_column(self) -> Column:
        return Column(self.key, self.header, required=self.required)

    def label(self, locale: str) -> str:
        """The column's name for a page: the contract's header in Japanese,
        the catalogue's English name in English."""
        return self.en if self.en and not str(locale).startswith("ja") else self.header


@dataclass(frozen=True)
class SourceSpec:
    key: str
    name: dict[str, str]
    department: dict[str, str]
    purpose: dict[str, str]
    retention_months: int
    columns: tuple[ColumnSpec, ...]
    date_column: str | None = None
    master: bool = False

    def tabular_columns(self) -> list[Column]:
        return [c.as_column() for c in self.columns]

    def column(self, key: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.key == key), None)

    @property
    def kept(self) -> tuple[ColumnSpec, ...]:
        return tuple(c for c in self.columns if c.keep == "yes")

    @property
    def match_columns(self) -> tuple[ColumnSpec, ...]:
        return tuple(c for c in self.columns if c.keep == "match")

    def label(self, locale: str) -> str:
        return self.name.get(locale) or self.name["ja"]


@dataclass(frozen=True)
class Catalogue:
    version: int
    purpose: str
    sources: dict[str, SourceSpec]

    def source(self, key: str) -> SourceSpec | None:
        return self.sources.get(key)

    @property
    def linkable(self) -> list[SourceSpec]:
        return [s for s in self.sources.values() if not s.master]


class CatalogueError(ValueError):
    pass


def parse(data: dict) -> Catalogue:
    sources: dict[str, SourceSpec] = {}
    for key, raw in (data.get("sources") or {}).items():
        cols = []
        for c in raw["columns"]:
            keep = c.get("keep", "no")
            keep = {True: "yes", False: "no"}.get(keep, keep)
            if keep not in KEEP_VALUES:
                raise CatalogueError(f"{key}.{c['key']}: keep must be one of {KEEP_VALUES}")
            if c.get("type", "text") not in TYPES:
                raise CatalogueError(f"{key}.{c['key']}: unknown type {c.get('type')}")
            cols.append(ColumnSpec(
                key=c["key"], header=c["header"], type=c.get("type", "text"), keep=keep,
                required=bool(c.get("required", False)), values=tuple(c.get("values", ())),
                encrypted=bool(c.get("encrypted", False)), en=str(c.get("en", "")),
            ))
        spec = SourceSpec(
            key=key, name=raw["name"], department=raw["department"], purpose=raw["purpose"],
            retention_months=int(raw.get("retention_months", 0)), columns=tuple(cols),
            date_column=raw.get("date_column"), master=bool(raw.get("master", False)),
        )
        if spec.date_column and spec.column(spec.date_column) is None:
            raise CatalogueError(f"{key}: date_column {spec.date_column} is not a column")
        sources[key] = spec
    return Catalogue(version=int(data.get("version", 1)), purpose=data.get("purpose", "data_linkage"), sources=sources)


@lru_cache(maxsize=1)
def load() -> Catalogue:
    with CATALOGUE_FILE.open(encoding="utf-8") as fh:
        return parse(yaml.safe_load(fh))
