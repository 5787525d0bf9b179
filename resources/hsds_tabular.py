"""HSDS 3.0 tabular data package: the catalogue as a zip of CSV tables.

The export flattens the JSON ``service`` objects of :mod:`resources.hsds`
into the HSDS tables (``services.csv``, ``schedules.csv``, ``locations.csv``
…) with a ``datapackage.json`` describing them, so nothing the JSON export
carries is lost: schedules, categories, languages, phones, costs, the
location with its address and accessibility, and the school district (a
service area). The import reads such a zip back (or a lone
``services.csv``), rebuilds the JSON objects and goes through the same
all-or-nothing checks as a JSON file.

Services without an organisation are attributed to the municipality in the
tables (HSDS tables require ``services.organization_id``); that organisation
is not carried back on import.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import defaultdict

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.principal import Principal
from portal.people.models import Municipality
from portal.tabular import csv_text, dict_rows, unneutralise
from resources.hsds import (
    CSV_COLUMNS,
    TAXONOMY_ID,
    _exportable,
    _id,
    import_csv,
    import_items,
    service_to_hsds,
)
from resources.service import ResourceError
from resources.taxonomy import TAXONOMY

MUNICIPALITY_ORG_ID = _id("organization", "municipality")
MAX_ZIP_BYTES = 20 * 1024 * 1024  # unpacked size we are willing to read

# (file, columns, numeric columns) in the order HSDS lists the tables.
TABLES: dict[str, tuple[list[str], set[str]]] = {
    "organizations.csv": (["id", "name", "alternate_name", "description", "email", "website"], set()),
    "services.csv": (CSV_COLUMNS, {"minimum_age", "maximum_age"}),
    "service_at_location.csv": (["id", "service_id", "location_id"], set()),
    "locations.csv": (["id", "location_type", "name", "latitude", "longitude"], {"latitude", "longitude"}),
    "phones.csv": (["id", "service_id", "number"], set()),
    "addresses.csv": (["id", "location_id", "address_1", "city", "state_province", "postal_code", "country",
                       "address_type"], set()),
    "schedules.csv": (["id", "service_id", "freq", "byday", "wkst", "opens_at", "closes_at", "description"], set()),
    "service_areas.csv": (["id", "service_id", "name", "description"], set()),
    "languages.csv": (["id", "service_id", "name", "code"], set()),
    "accessibility.csv": (["id", "location_id", "description"], set()),
    "taxonomy_terms.csv": (["id", "code", "name", "description", "taxonomy", "taxonomy_id"], set()),
    "taxonomies.csv": (["id", "name", "description"], set()),
    "cost_options.csv": (["id", "service_id", "option", "currency", "amount"], {"amount"}),
    "attributes.csv": (["id", "link_id", "link_type", "link_entity", "taxonomy_term_id", "value"], set()),
}


def _municipality_name(session: Session, locale: str) -> str:
    m = session.scalar(select(Municipality).order_by(Municipality.id).limit(1))
    if m is None:
        return "Municipality" if locale == "en" else "市区町村"
    return (m.name_en if locale == "en" else "") or m.name_ja


def tables(session: Session, locale: str = "ja", *, include_drafts: bool = False) -> dict[str, list[dict]]:
    """The catalogue as HSDS tables: {file name: rows}."""
    out: dict[str, list[dict]] = {name: [] for name in TABLES}
    orgs: dict[str, dict] = {}
    terms: dict[str, dict] = {}
    for s in _exportable(session, include_drafts):
        item = service_to_hsds(s, locale)
        org = item.get("organization")
        if org:
            orgs.setdefault(org["id"], {"id": org["id"], "name": org["name"], "description": org["description"]})
        else:
            item["organization_id"] = MUNICIPALITY_ORG_ID
            name = _municipality_name(session, locale)
            orgs.setdefault(MUNICIPALITY_ORG_ID, {"id": MUNICIPALITY_ORG_ID, "name": name, "description": name})
        out["services.csv"].append({k: item.get(k) for k in CSV_COLUMNS})
        for key, table in (("phones", "phones.csv"), ("schedules", "schedules.csv"), ("languages", "languages.csv"),
                           ("cost_options", "cost_options.csv"), ("service_areas", "service_areas.csv")):
            out[table].extend(item.get(key) or [])
        for a in item.get("attributes") or []:
            term = a["taxonomy_term"]
            terms.setdefault(term["id"], term)
            out["attributes.csv"].append({k: v for k, v in a.items() if k != "taxonomy_term"})
        for sal in item.get("service_at_locations") or []:
            loc = sal["location"]
            out["service_at_location.csv"].append({k: sal[k] for k in ("id", "service_id", "location_id")})
            out["locations.csv"].append(loc)
            out["addresses.csv"].extend(loc.get("addresses") or [])
            out["accessibility.csv"].extend(loc.get("accessibility") or [])
    out["organizations.csv"] = list(orgs.values())
    out["taxonomy_terms.csv"] = list(terms.values())
    if terms:
        out["taxonomies.csv"] = [{"id": TAXONOMY_ID, "name": TAXONOMY,
                                  "description": "Mimamori local support categories"}]
    return out


def _csv(rows: list[dict], columns: list[str]) -> str:
    """One HSDS table (formula-like cells neutralised by the one CSV writer)."""
    return csv_text(columns, dict_rows(columns, rows))


def _datapackage(locale: str) -> dict:
    def field(col: str, numeric: set[str]) -> dict:
        return {"name": col, "type": "number" if col in numeric else "string"}

    return {
        "profile": "tabular-data-package",
        "name": f"mimamori-local-support-{locale}",
        "title": "Mimamori local support catalogue (HSDS 3.0)",
        "version": "3.0",
        "resources": [
            {"name": path.removesuffix(".csv"), "path": path, "profile": "tabular-data-resource", "format": "csv",
             "mediatype": "text/csv", "encoding": "utf-8",
             "schema": {"fields": [field(c, numeric) for c in cols], "primaryKey": "id"}}
            for path, (cols, numeric) in TABLES.items()
        ],
    }


def export_datapackage(session: Session, locale: str = "ja", *, include_drafts: bool = False) -> bytes:
    """A zip: ``datapackage.json`` and one CSV per HSDS table (UTF-8)."""
    data = tables(session, locale, include_drafts=include_drafts)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("datapackage.json", json.dumps(_datapackage(locale), ensure_ascii=False, indent=2))
        for path, (cols, _numeric) in TABLES.items():
            zf.writestr(path, _csv(data[path], cols))
    return out.getvalue()


# -- import ------------------------------------------------------------------------------


def _read_csv(text: str, numeric: set[str]) -> list[dict]:
    rows = []
    for row in csv.DictReader(io.StringIO(text, newline="")):
        item = {k: unneutralise(v) for k, v in row.items() if k and v not in (None, "")}
        for k in numeric & set(item):
            try:
                item[k] = float(item[k])
            except ValueError:
                pass  # left as text: the schema check reports it
        rows.append(item)
    return rows


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResourceError(_l("The file is not UTF-8 text.")) from exc


def read_tables(raw: bytes) -> dict[str, list[dict]]:
    """The HSDS tables in a zip (at its top or in one folder)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        members = {info.filename.rsplit("/", 1)[-1]: info for info in zf.infolist() if not info.is_dir()}
        if sum(members[n].file_size for n in members if n in TABLES) > MAX_ZIP_BYTES:
            raise ResourceError(_l("The zip file is too large to import."))
        return {name: _read_csv(_decode(zf.read(members[name])), TABLES[name][1])
                for name in TABLES if name in members}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, EOFError) as exc:
        raise ResourceError(_l("This zip file cannot be read.")) from exc


def items_from_tables(data: dict[str, list[dict]]) -> list[dict]:
    """Rebuild the JSON ``service`` objects from HSDS tables (rows joined by their ids)."""
    if "services.csv" not in data:
        raise ResourceError(_l("This is not an HSDS data package: there is no services.csv in it."))

    def by(table: str, key: str) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = defaultdict(list)
        for row in data.get(table, []):
            if row.get(key):
                out[row[key]].append(row)
        return out

    orgs = {r["id"]: r for r in data.get("organizations.csv", []) if r.get("id")}
    terms = {r["id"]: r for r in data.get("taxonomy_terms.csv", []) if r.get("id")}
    locations = {r["id"]: r for r in data.get("locations.csv", []) if r.get("id")}
    addresses, access = by("addresses.csv", "location_id"), by("accessibility.csv", "location_id")
    per_service = {t: by(t, "service_id") for t in ("phones.csv", "schedules.csv", "languages.csv",
                                                     "cost_options.csv", "service_areas.csv",
                                                     "service_at_location.csv")}
    attributes = by("attributes.csv", "link_id")
    items = []
    for row in data["services.csv"]:
        item = dict(row)
        sid = row.get("id", "")
        org_id = row.get("organization_id")
        if org_id and org_id != MUNICIPALITY_ORG_ID and org_id in orgs:
            item["organization"] = orgs[org_id]
        for key, table in (("phones", "phones.csv"), ("schedules", "schedules.csv"), ("languages", "languages.csv"),
                           ("cost_options", "cost_options.csv"), ("service_areas", "service_areas.csv")):
            if per_service[table].get(sid):
                item[key] = per_service[table][sid]
        attrs = []
        for a in attributes.get(sid, []):
            a = dict(a)
            if a.get("taxonomy_term_id") in terms:
                a["taxonomy_term"] = terms[a["taxonomy_term_id"]]
            attrs.append(a)
        if attrs:
            item["attributes"] = attrs
        sals = []
        for sal in per_service["service_at_location.csv"].get(sid, []):
            loc = dict(locations.get(sal.get("location_id", ""), {}))
            if loc:
                loc["addresses"] = addresses.get(loc["id"], [])
                loc["accessibility"] = access.get(loc["id"], [])
                sals.append({**sal, "location": loc})
        if sals:
            item["service_at_locations"] = sals
        items.append(item)
    if not items:
        raise ResourceError(_l("This file holds no HSDS services."))
    return items


def import_datapackage(session: Session, actor: Principal, raw: bytes, locale: str = "ja") -> tuple[int, int]:
    """Import an HSDS tabular zip (or a services.csv): (created, updated), all or nothing."""
    if not raw.startswith(b"PK"):
        return import_csv(session, actor, raw, locale)
    return import_items(session, actor, items_from_tables(read_tables(raw)), locale)
