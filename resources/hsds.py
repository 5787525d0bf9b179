"""HSDS 3.0 import and export (JSON service objects, and the tabular services.csv).

The export follows Open Referral HSDS 3.0's ``service`` object with its
organisation, languages, schedules, phones, cost options, location
(address, accessibility) and taxonomy attributes; a conformance test
validates it against the official compiled schema. A file is written in one
locale: ``name``/``description`` in that locale, ``alternate_name`` the name
in the other one.

Imports are all or nothing: the file is checked against :data:`IMPORT_SCHEMA`
(and the age ranges) first, and every problem is listed; entries become
drafts (or update the entry with the same id, keeping its status).
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import time

from flask_babel import lazy_gettext as _l
from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.auth.principal import Principal
from portal.tabular import csv_text, dict_rows, unneutralise
from resources.models import Service, ServiceStatus
from resources.service import (
    LANGUAGES,
    ResourceError,
    ScheduleData,
    ServiceData,
    data_from_service,
    save_service,
)
from resources.taxonomy import CATEGORIES, TAXONOMY

STATUS_OUT = {ServiceStatus.published: "active", ServiceStatus.draft: "inactive", ServiceStatus.archived: "defunct"}
TZ = "+09:00"
_PREF = re.compile(r"^(東京都|北海道|(?:京都|大阪)府|.{2,3}?県)")
_CITY = re.compile(r"^(.+?[市区町村])")


def _id(*parts: str) -> str:
    """A stable UUID for a sub-record (the same entry always exports the same ids)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "mimamori:" + "/".join(parts)))


TAXONOMY_ID = _id("taxonomy")


def _years(months: int | None) -> float | int | None:
    if months is None:
        return None
    return months // 12 if months % 12 == 0 else round(months / 12, 2)


def _hhmm(t: time | None) -> str | None:
    return f"{t:%H:%M}{TZ}" if t else None


def _drop_none(d: dict) -> dict:
    return {k: v for k, v in d.items() if v is not None and v != ""}


def service_to_hsds(s: Service, locale: str = "ja") -> dict:
    other = "en" if locale == "ja" else "ja"
    other_name = s.name_en if other == "en" else s.name_ja
    address = s.address
    pref = _PREF.match(address)
    rest = address[pref.end():] if pref else address
    city = _CITY.match(rest)
    loc_id = _id(s.uuid, "location")
    out = {
        "id": s.uuid,
        "organization_id": s.organization.uuid if s.organization else None,
        "name": s.name(locale),
        "alternate_name": other_name if other_name and other_name != s.name(locale) else None,
        "description": s.description(locale),
        "url": s.url or None,
        "email": s.email or None,
        "status": STATUS_OUT[s.status],
        "fees_description": s.fees(locale) or None,
        "minimum_age": _years(s.min_age_months),
        "maximum_age": _years(s.max_age_months),
        "assured_date": s.last_verified_on.isoformat() if s.last_verified_on else None,
        "last_modified": s.updated_at.isoformat().replace("+00:00", "Z") if s.updated_at else None,
    }
    out = _drop_none(out)
    if s.organization:
        o = s.organization
        out["organization"] = {"id": o.uuid, "name": o.name(locale), "description": o.description_ja or o.name(locale)}
    out["languages"] = [{"id": _id(s.uuid, "lang", c), "service_id": s.uuid, "code": c, "name": LANGUAGES.get(c, c)}
                        for c in s.language_codes]
    out["phones"] = [{"id": _id(s.uuid, "phone"), "service_id": s.uuid, "number": s.phone}] if s.phone else []
    out["cost_options"] = [_drop_none({"id": _id(s.uuid, "cost"), "service_id": s.uuid,
                                       "option": "free" if s.is_free else (s.fees(locale) or "fee"),
                                       "currency": None if s.is_free else "JPY",
                                       "amount": 0 if s.is_free else None})]
    out["schedules"] = [
        _drop_none({"id": sc.uuid, "service_id": s.uuid, "freq": sc.freq, "byday": sc.byday,
                    "wkst": "MO", "opens_at": _hhmm(sc.opens_at), "closes_at": _hhmm(sc.closes_at),
                    "description": sc.description(locale)})
        for sc in s.schedules
    ]
    out["attributes"] = [
        {"id": _id(s.uuid, "category", c), "link_id": s.uuid, "link_type": "category", "link_entity": "service",
         "taxonomy_term_id": _id("taxonomy", c), "value": c,
         "taxonomy_term": {"id": _id("taxonomy", c), "code": c, "name": str(CATEGORIES.get(c, c)),
                           "description": str(CATEGORIES.get(c, c)), "taxonomy": TAXONOMY,
                           "taxonomy_id": TAXONOMY_ID}}
        for c in s.category_codes
    ]
    # The school district (学区) a service is meant for, as an HSDS service area.
    out["service_areas"] = ([{"id": _id(s.uuid, "area"), "service_id": s.uuid, "name": s.district,
                              "description": s.district}] if s.district else [])
    if address or s.location_name:
        location = _drop_none({"id": loc_id, "location_type": "physical", "name": s.location_name or None,
                               "latitude": s.latitude, "longitude": s.longitude})
        if address:
            location["addresses"] = [{
                "id": _id(s.uuid, "address"), "location_id": loc_id, "address_1": address,
                "city": city.group(1) if city else "", "state_province": pref.group(1) if pref else "",
                "postal_code": s.postal_code, "country": "JP", "address_type": "physical",
            }]
        if s.accessibility(locale):
            location["accessibility"] = [{"id": _id(s.uuid, "access"), "location_id": loc_id,
                                          "description": s.accessibility(locale)}]
        out["service_at_locations"] = [{"id": _id(s.uuid, "sal"), "service_id": s.uuid, "location_id": loc_id,
                                        "location": location}]
    return out


def _exportable(session: Session, include_drafts: bool) -> list[Service]:
    q = select(Service).options(selectinload(Service.schedules), selectinload(Service.categories),
                                selectinload(Service.organization)).order_by(Service.id)
    if not include_drafts:
        q = q.where(Service.status == ServiceStatus.published)
    return list(session.scalars(q))


def export_json(session: Session, locale: str = "ja", *, include_drafts: bool = False) -> str:
    items = [service_to_hsds(s, locale) for s in _exportable(session, include_drafts)]
    return json.dumps(items, ensure_ascii=False, indent=2)


CSV_COLUMNS = ["id", "organization_id", "name", "alternate_name", "description", "url", "email", "status",
               "fees_description", "minimum_age", "maximum_age", "assured_date", "last_modified"]


def export_csv(session: Session, locale: str = "ja", *, include_drafts: bool = False) -> str:
    """HSDS tabular ``services.csv`` (formula-like cells neutralised by the one CSV writer)."""
    items = (service_to_hsds(s, locale) for s in _exportable(session, include_drafts))
    return csv_text(CSV_COLUMNS, dict_rows(CSV_COLUMNS, items))


# -- import -----------------------------------------------------------------------------

_num = {"type": ["number", "null"]}


def _str(n: int | None = None) -> dict:
    """A text field no longer than its column (so a long value is a clear message, not a database error)."""
    return {"type": "string", "maxLength": n} if n else {"type": "string"}


def _objects(props: dict, required: list[str] | None = None) -> dict:
    item = {"type": "object", "properties": props}
    if required:
        item["required"] = required
    return {"type": "array", "items": item}


# What an import must look like: looser than the official schema (ids need not be
# UUIDs, sub-records need no ids) and sized to our columns.
IMPORT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "name", "status"],
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 36},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "alternate_name": _str(200), "description": _str(4000), "url": _str(500), "email": _str(254),
        "status": {"enum": ["active", "inactive", "defunct", "temporarily closed"]},
        "fees_description": _str(500), "minimum_age": _num, "maximum_age": _num,
        "organization": {"type": "object", "properties": {"name": _str(200)}},
        "languages": _objects({"code": _str(10)}),
        "phones": _objects({"number": _str(40)}, ["number"]),
        "schedules": _objects({"freq": {"enum": ["WEEKLY", "MONTHLY"]}, "byday": _str(40), "opens_at": _str(),
                               "closes_at": _str(), "description": _str(300)}),
        "cost_options": _objects({"option": _str(500), "amount": _num, "currency": _str(3)}),
        "attributes": _objects({"value": _str(40), "taxonomy_term": {"type": "object", "properties": {"code": _str(40)}}}),
        "service_at_locations": _objects({"location": {"type": "object", "properties": {
            "name": _str(200), "latitude": _num, "longitude": _num,
            "addresses": _objects({"address_1": _str(300), "postal_code": _str(10)}),
            "accessibility": _objects({"description": _str(500)})}}}),
        "service_areas": _objects({"name": _str(100)}),
    },
}
_validator = Draft202012Validator(IMPORT_SCHEMA)


def _time_in(text: str | None) -> time | None:
    m = re.match(r"^(\d{2}):(\d{2})", text or "")
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        return None
    return time(int(m.group(1)), int(m.group(2)))


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)


def _months(years) -> int | None:
    return None if years is None else round(float(years) * 12)


def _data_from_hsds(item: dict, locale: str) -> ServiceData:
    other = "en" if locale == "ja" else "ja"
    names = {locale: item["name"], other: item.get("alternate_name", "")}
    loc = ((item.get("service_at_locations") or [{}])[0] or {}).get("location") or {}
    addr = (loc.get("addresses") or [{}])[0] or {}
    access = (loc.get("accessibility") or [{}])[0] or {}
    cost = (item.get("cost_options") or [{}])[0] or {}
    is_free = cost.get("amount") in (0, None) and str(cost.get("option", "free")).lower() in ("free", "無料", "")
    fees = item.get("fees_description", "")
    cats = []
    for a in item.get("attributes") or []:
        code = (a.get("taxonomy_term") or {}).get("code") or a.get("value")
        if code in CATEGORIES:
            cats.append(code)
    return ServiceData(
        name_ja=names["ja"] or names["en"], name_en=names["en"],
        description_ja=item.get("description", "") if locale == "ja" else "",
        description_en=item.get("description", "") if locale == "en" else "",
        organization_name=(item.get("organization") or {}).get("name", ""),
        categories=cats, min_age_months=_months(item.get("minimum_age")), max_age_months=_months(item.get("maximum_age")),
        languages=[x.get("code", "") for x in item.get("languages") or [] if x.get("code")] or ["ja"],
        is_free=bool(is_free) and not fees,
        fees_ja=fees if locale == "ja" else "", fees_en=fees if locale == "en" else "",
        phone=((item.get("phones") or [{}])[0] or {}).get("number", ""), email=item.get("email", ""),
        url=item.get("url", ""), location_name=loc.get("name", ""), address=addr.get("address_1", ""),
        postal_code=addr.get("postal_code", ""),
        accessibility_ja=access.get("description", "") if locale == "ja" else "",
        accessibility_en=access.get("description", "") if locale == "en" else "",
        latitude=_float_or_none(loc.get("latitude")), longitude=_float_or_none(loc.get("longitude")),
        district=((item.get("service_areas") or [{}])[0] or {}).get("name", ""),
        schedules=[ScheduleData(sc.get("freq", "WEEKLY"), sc.get("byday", ""), _time_in(sc.get("opens_at")),
                                _time_in(sc.get("closes_at")),
                                sc.get("description", "") if locale == "ja" else "",
                                sc.get("description", "") if locale == "en" else "")
                   for sc in item.get("schedules") or [] if sc.get("byday")],
    )


def _merge(existing: ServiceData, new: ServiceData, locale: str) -> ServiceData:
    """Keep the other locale's texts of an existing entry when a one-locale file updates it."""
    other = "en" if locale == "ja" else "ja"
    for attr in ("description", "fees", "accessibility"):
        key = f"{attr}_{other}"
        setattr(new, key, getattr(existing, key))
    if len(new.schedules) == len(existing.schedules):
        for mine, theirs in zip(new.schedules, existing.schedules, strict=True):
            setattr(mine, f"description_{other}", getattr(theirs, f"description_{other}"))
    return new


def import_items(session: Session, actor: Principal, items: list[dict], locale: str = "ja") -> tuple[int, int]:
    """Validate every item, then create or update; (created, updated). All or nothing."""
    problems: list[str] = []
    prepared: list[tuple[dict, ServiceData]] = []
    for n, item in enumerate(items, start=1):
        errors = sorted(_validator.iter_errors(item), key=lambda e: list(e.absolute_path))
        if not isinstance(item, dict) or errors:
            for e in errors[:3] or [None]:
                where = "/".join(str(p) for p in e.absolute_path) if e else ""
                problems.append(str(_l("Entry %(n)d %(where)s: %(msg)s", n=n, where=where, msg=e.message if e else "not an object")))
            continue
        data = _data_from_hsds(item, locale)
        if data.min_age_months is not None and data.max_age_months is not None and data.min_age_months > data.max_age_months:
            problems.append(str(_l("Entry %(n)d: the minimum age is above the maximum age.", n=n)))
            continue
        prepared.append((item, data))
    if problems:
        raise ResourceError("\n".join(problems[:20]))
    created = updated = 0
    for item, data in prepared:
        existing = session.scalar(select(Service).where(Service.uuid == item["id"]))
        try:
            if existing:
                save_service(session, actor, _merge(data_from_service(existing), data, locale), existing)
                updated += 1
            else:
                s = save_service(session, actor, data)
                try:
                    s.uuid = str(uuid.UUID(item["id"]))
                except ValueError:
                    pass  # not a UUID: keep our own id
                created += 1
        except ResourceError as exc:
            raise ResourceError(f"{item.get('name', '')}: {exc.message}") from exc
    session.flush()
    return created, updated


def import_json(session: Session, actor: Principal, raw: bytes, locale: str = "ja") -> tuple[int, int]:
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResourceError(_l("This file is not valid JSON.")) from exc
    if isinstance(doc, dict) and isinstance(doc.get("contents"), list):
        doc = doc["contents"]  # an HSDS API page
    elif isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not doc:
        raise ResourceError(_l("This file holds no HSDS services."))
    return import_items(session, actor, doc, locale)


def import_csv(session: Session, actor: Principal, raw: bytes, locale: str = "ja") -> tuple[int, int]:
    """An HSDS tabular services.csv."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ResourceError(_l("The file is not UTF-8 text.")) from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or not {"id", "name", "status"} <= set(reader.fieldnames):
        raise ResourceError(_l("This is not an HSDS services.csv: it needs the columns id, name and status."))
    items = []
    for row in reader:
        item = {k: unneutralise(v) for k, v in row.items() if k in CSV_COLUMNS and v not in (None, "")}
        for k in ("minimum_age", "maximum_age"):
            if k in item:
                try:
                    item[k] = float(item[k])
                except ValueError:
                    item[k] = item[k]  # left as text: the schema check reports it
        items.append(item)
    if not items:
        raise ResourceError(_l("This file holds no HSDS services."))
    return import_items(session, actor, items, locale)
