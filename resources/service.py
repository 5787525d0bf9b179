"""The catalogue: keeping entries, finding them, favourites and calendars.

Plain functions taking a Session and explicit arguments; they flush, never
commit. This module reads the people model only (children's birth dates for
the age filter): never consent, surveys or screening.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import nh3
from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, delete, or_, select
from sqlalchemy.orm import Session, selectinload

from portal import once
from portal.audit import service as audit
from portal.auth.principal import Principal
from portal.i18n import TOKYO
from portal.orm import utcnow
from portal.people import service as people
from resources.models import (
    Favourite,
    Organization,
    Schedule,
    Service,
    ServiceCategory,
    ServiceStatus,
)
from resources.taxonomy import CATEGORIES

RECHECK_MONTHS = 6  # entries not verified for this long are listed for re-checking
GRACE_DAYS = 30  # ... and hidden from families this long after that
LANGUAGES = {"ja": "日本語", "en": "English", "zh": "中文", "ko": "한국어", "pt": "Português", "vi": "Tiếng Việt", "tl": "Tagalog", "ne": "नेपाली", "es": "Español"}
DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_BYDAY = re.compile(r"^([1-4]|-1)?(MO|TU|WE|TH|FR|SA|SU)$")


class ResourceError(ValueError):
    """Bad input, with a message for the user (a lazy string)."""

    def __init__(self, message, field: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field


def plain_text(value: str | None) -> str:
    """Text with any HTML removed (tags and script bodies), entities decoded.

    The result is plain text: templates escape it on output, so nothing in a
    description can run as markup.
    """
    if not value:
        return ""
    return html.unescape(nh3.clean(value, tags=set())).strip()


def _today() -> date:
    return datetime.now(TOKYO).date()


# -- keeping entries ----------------------------------------------------------------


@dataclass
class ScheduleData:
    freq: str = "WEEKLY"
    byday: str = ""
    opens_at: time | None = None
    closes_at: time | None = None
    description_ja: str = ""
    description_en: str = ""


@dataclass
class ServiceData:
    name_ja: str
    name_en: str = ""
    description_ja: str = ""
    description_en: str = ""
    organization_name: str = ""
    categories: list[str] = field(default_factory=list)
    min_age_months: int | None = None
    max_age_months: int | None = None
    languages: list[str] = field(default_factory=lambda: ["ja"])
    is_free: bool = True
    fees_ja: str = ""
    fees_en: str = ""
    phone: str = ""
    email: str = ""
    url: str = ""
    location_name: str = ""
    address: str = ""
    postal_code: str = ""
    district: str = ""
    accessibility_ja: str = ""
    accessibility_en: str = ""
    latitude: float | None = None
    longitude: float | None = None
    schedules: list[ScheduleData] = field(default_factory=list)


def validate_byday(freq: str, byday: str) -> str:
    byday = byday.replace(" ", "").upper()
    if freq not in ("WEEKLY", "MONTHLY"):
        raise ResourceError(_l("Repeat must be weekly or monthly."), "schedule")
    parts = [p for p in byday.split(",") if p]
    if not parts:
        raise ResourceError(_l("Choose the days of the week for the schedule."), "schedule")
    for p in parts:
        m = _BYDAY.match(p)
        if not m or (freq == "WEEKLY" and m.group(1)):
            raise ResourceError(_l("Days must look like MO,WE (weekly) or 2SA (monthly: second Saturday)."), "schedule")
    return ",".join(parts)


# Column sizes (resources.models.Service): longer text is refused with a message, not cut.
MAX_LENGTHS = {"name_ja": 200, "name_en": 200, "description_ja": 4000, "description_en": 4000, "fees_ja": 500,
               "fees_en": 500, "phone": 40, "email": 254, "url": 500, "location_name": 200, "address": 300,
               "postal_code": 10, "district": 100, "accessibility_ja": 500, "accessibility_en": 500,
               "organization_name": 200}


def _validate(data: ServiceData) -> None:
    if not data.name_ja.strip():
        raise ResourceError(_l("A Japanese name is required."), "name_ja")
    for attr, n in MAX_LENGTHS.items():
        if len((getattr(data, attr) or "").strip()) > n:
            raise ResourceError(_l("Too long: %(field)s (at most %(n)d characters).", field=attr, n=n), attr)
    for s in data.schedules:
        if len(s.description_ja or "") > 300 or len(s.description_en or "") > 300:
            raise ResourceError(_l("Too long: %(field)s (at most %(n)d characters).", field="schedule", n=300),
                                "schedule")
    for v in (data.min_age_months, data.max_age_months):
        if v is not None and not 0 <= v <= 12 * 120:
            raise ResourceError(_l("Ages must be between 0 and 120 years."), "min_age")
    if data.min_age_months is not None and data.max_age_months is not None and data.min_age_months > data.max_age_months:
        raise ResourceError(_l("The minimum age is above the maximum age: the age range is upside down."), "min_age")
    if data.url.strip() and not data.url.strip().lower().startswith(("https://", "http://")):
        raise ResourceError(_l("A web address starts with https://"), "url")
    if (data.latitude is None) != (data.longitude is None) or (
        data.latitude is not None and not (-90 <= data.latitude <= 90 and -180 <= data.longitude <= 180)
    ):
        raise ResourceError(_l("The map position needs a latitude (-90 to 90) and a longitude (-180 to 180)."), "address")
    unknown = set(data.categories) - set(CATEGORIES)
    if unknown:
        raise ResourceError(_l("Unknown category."), "categories")
    for s in data.schedules:
        s.byday = validate_byday(s.freq, s.byday)
        if s.opens_at and s.closes_at and s.opens_at >= s.closes_at:
            raise ResourceError(_l("A schedule closes before it opens."), "schedule")


def _organization(session: Session, name: str) -> Organization | None:
    name = plain_text(name)
    if not name:
        return None
    org = session.scalar(select(Organization).where(Organization.name_ja == name))
    if org is None:
        org = Organization(name_ja=name)
        session.add(org)
        session.flush()
    return org


def save_service(session: Session, actor: Principal, data: ServiceData, service: Service | None = None) -> Service:
    """Create a draft or edit an entry (an edit of a published entry stays published)."""
    _validate(data)
    creating = service is None
    if service is None:
        service = Service(status=ServiceStatus.draft, name_ja="")
        session.add(service)
    org = _organization(session, data.organization_name)
    service.organization_id = org.id if org else None
    for attr in ("name_ja", "name_en", "description_ja", "description_en", "fees_ja", "fees_en",
                 "location_name", "address", "accessibility_ja", "accessibility_en", "district"):
        setattr(service, attr, plain_text(getattr(data, attr)))
    service.phone = data.phone.strip()
    service.email = data.email.strip()
    service.url = data.url.strip()
    service.postal_code = data.postal_code.strip()
    service.min_age_months = data.min_age_months
    service.max_age_months = data.max_age_months
    service.latitude, service.longitude = data.latitude, data.longitude
    service.languages = ",".join(dict.fromkeys(c for c in data.languages if c)) or "ja"
    service.is_free = data.is_free
    wanted = list(dict.fromkeys(data.categories))
    kept = [c for c in service.categories if c.code in wanted]
    have = {c.code for c in kept}
    service.categories = kept + [ServiceCategory(code=c) for c in wanted if c not in have]
    service.schedules = [
        Schedule(freq=s.freq, byday=s.byday, opens_at=s.opens_at, closes_at=s.closes_at,
                 description_ja=plain_text(s.description_ja), description_en=plain_text(s.description_en))
        for s in data.schedules
    ]
    session.flush()
    audit.record(session, actor, "resources.service_created" if creating else "resources.service_edited",
                 detail={"service_id": service.id})
    return service


def data_from_service(service: Service) -> ServiceData:
    return ServiceData(
        name_ja=service.name_ja, name_en=service.name_en, description_ja=service.description_ja,
        description_en=service.description_en,
        organization_name=service.organization.name_ja if service.organization else "",
        categories=service.category_codes, min_age_months=service.min_age_months,
        max_age_months=service.max_age_months, languages=service.language_codes, is_free=service.is_free,
        fees_ja=service.fees_ja, fees_en=service.fees_en, phone=service.phone, email=service.email,
        url=service.url, location_name=service.location_name, address=service.address,
        postal_code=service.postal_code, district=service.district,
        accessibility_ja=service.accessibility_ja, accessibility_en=service.accessibility_en,
        latitude=service.latitude, longitude=service.longitude,
        schedules=[ScheduleData(s.freq, s.byday, s.opens_at, s.closes_at, s.description_ja, s.description_en)
                   for s in service.schedules],
    )


def publish(session: Session, actor: Principal, service: Service, *, today: date | None = None) -> None:
    if service.status == ServiceStatus.published or not once.claim(
            session, Service, service.id, Service.status != ServiceStatus.published,
            status=ServiceStatus.published, published_at=utcnow(), archived_at=None,
            last_verified_on=today or _today()):
        raise ResourceError(_l("This entry is already published."))
    session.flush()
    audit.record(session, actor, "resources.service_published", detail={"service_id": service.id})


def archive(session: Session, actor: Principal, service: Service) -> None:
    if service.status == ServiceStatus.archived or not once.claim(
            session, Service, service.id, Service.status != ServiceStatus.archived,
            status=ServiceStatus.archived, archived_at=utcnow()):
        raise ResourceError(_l("This entry is already archived."))
    session.flush()
    audit.record(session, actor, "resources.service_archived", detail={"service_id": service.id})


def mark_verified(session: Session, actor: Principal, service: Service, *, today: date | None = None) -> None:
    service.last_verified_on = today or _today()
    session.flush()
    audit.record(session, actor, "resources.service_verified", detail={"service_id": service.id})


def recheck_due_before(today: date) -> date:
    return today - relativedelta(months=RECHECK_MONTHS)


def hidden_before(today: date) -> date:
    return recheck_due_before(today) - timedelta(days=GRACE_DAYS)


def _visible_to_families(today: date):
    return and_(Service.status == ServiceStatus.published, Service.last_verified_on >= hidden_before(today))


def needing_recheck(session: Session, today: date | None = None) -> tuple[list[Service], list[Service]]:
    """Published entries due for re-checking: (still shown, already hidden from families)."""
    today = today or _today()
    rows = session.scalars(
        select(Service)
        .where(Service.status == ServiceStatus.published, Service.last_verified_on < recheck_due_before(today))
        .order_by(Service.last_verified_on)
    ).all()
    cut = hidden_before(today)
    return [s for s in rows if s.last_verified_on >= cut], [s for s in rows if s.last_verified_on < cut]


def all_entries(session: Session, status: str | None = None) -> list[Service]:
    q = select(Service).options(selectinload(Service.categories)).order_by(Service.status, Service.name_ja)
    if status:
        q = q.where(Service.status == ServiceStatus(status))
    return list(session.scalars(q))


# -- finding ----------------------------------------------------------------------


@dataclass
class Search:
    q: str = ""
    category: str = ""
    age_years: int | None = None
    district: str = ""
    language: str = ""
    free_only: bool = False


def search_query(search: Search, today: date | None = None) -> Select:
    today = today or _today()
    q = select(Service).where(_visible_to_families(today))
    if search.q.strip():
        like = f"%{search.q.strip()}%"
        q = q.where(or_(Service.name_ja.ilike(like), Service.name_en.ilike(like),
                        Service.description_ja.ilike(like), Service.description_en.ilike(like)))
    if search.category:
        q = q.where(Service.id.in_(select(ServiceCategory.service_id).where(ServiceCategory.code == search.category)))
    if search.age_years is not None:
        lo, hi = search.age_years * 12, search.age_years * 12 + 11
        q = q.where(or_(Service.min_age_months.is_(None), Service.min_age_months <= hi),
                    or_(Service.max_age_months.is_(None), Service.max_age_months >= lo))
    if search.district:
        q = q.where(or_(Service.district == search.district, Service.district == ""))
    if search.language:
        q = q.where(("," + Service.languages + ",").like(f"%,{search.language},%"))
    if search.free_only:
        q = q.where(Service.is_free.is_(True))
    return q.options(selectinload(Service.categories), selectinload(Service.schedules)).order_by(Service.name_ja)


def find(session: Session, search: Search, today: date | None = None) -> list[Service]:
    return list(session.scalars(search_query(search, today)))


def published_or_none(session: Session, service_id: int, today: date | None = None) -> Service | None:
    return session.scalar(select(Service).where(Service.id == service_id, _visible_to_families(today or _today())))


def districts(session: Session) -> list[str]:
    from portal.people.models import School

    names = set(session.scalars(select(School.district).where(School.district != "")))
    names |= set(session.scalars(select(Service.district).where(Service.district != "")))
    return sorted(names)


def age_on(birth: date, today: date) -> int:
    return relativedelta(today, birth).years


def family_ages(session: Session, guardian_id: int, today: date | None = None) -> list[tuple[str, int]]:
    """(child's name, age in years) for a guardian's children, youngest first."""
    today = today or _today()
    children = people.children_of_guardian(session, guardian_id)
    return sorted(((c.name, age_on(c.birth_date, today)) for c, _cls, _school in children), key=lambda t: t[1])


# -- favourites ---------------------------------------------------------------------


def toggle_favourite(session: Session, principal: Principal, service: Service) -> bool:
    """Save or unsave; returns True when the service is now a favourite.

    Two clicks at once are two toggles one after the other (the owner's row lock), never a
    duplicate row or a row deleted twice (a server error).
    """
    from portal.people.models import Child, Guardian

    once.lock(session, Guardian if principal.kind == "guardian" else Child, principal.id)
    existing = session.scalar(select(Favourite).execution_options(populate_existing=True).where(
        Favourite.owner_kind == principal.kind, Favourite.owner_id == principal.id, Favourite.service_id == service.id))
    if existing:
        session.delete(existing)
        session.flush()
        return False
    session.add(Favourite(owner_kind=principal.kind, owner_id=principal.id, service_id=service.id))
    session.flush()
    return True


def favourite_ids(session: Session, principal: Principal) -> set[int]:
    if principal.kind not in ("guardian", "student"):
        return set()
    return set(session.scalars(select(Favourite.service_id).where(
        Favourite.owner_kind == principal.kind, Favourite.owner_id == principal.id)))


def favourites(session: Session, principal: Principal, today: date | None = None) -> list[Service]:
    ids = select(Favourite.service_id).where(Favourite.owner_kind == principal.kind, Favourite.owner_id == principal.id)
    return list(session.scalars(select(Service).where(Service.id.in_(ids), _visible_to_families(today or _today()))
                                .options(selectinload(Service.categories), selectinload(Service.schedules))
                                .order_by(Service.name_ja)))


def forget_owner(session: Session, kind: str, owner_id: int) -> None:
    session.execute(delete(Favourite).where(Favourite.owner_kind == kind, Favourite.owner_id == owner_id))


# -- schedules, calendars, maps --------------------------------------------------------


def rrule_text(s: Schedule) -> str:
    return f"FREQ={s.freq};BYDAY={s.byday}"


def next_start(s: Schedule, after: datetime) -> datetime | None:
    """The next time this schedule opens after ``after`` (Asia/Tokyo)."""
    start = datetime.combine(after.astimezone(TOKYO).date(), s.opens_at or time(0, 0), TOKYO)
    rule = rrulestr(rrule_text(s), dtstart=start)
    return rule.after(after.astimezone(TOKYO), inc=True)


def ics_for(service: Service, locale: str, *, now: datetime | None = None) -> bytes:
    """The service's schedules as an iCalendar file (one recurring event each)."""
    from icalendar import Calendar, Event, vRecur

    now = now or utcnow()
    cal = Calendar()
    cal.add("prodid", "-//Mimamori//Local support//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", service.name(locale))
    for s in service.schedules:
        start = next_start(s, now)
        if start is None:
            continue
        ev = Event()
        ev.add("uid", f"{s.uuid}@mimamori")
        ev.add("dtstamp", now)
        ev.add("summary", service.name(locale))
        ev.add("dtstart", start)
        end_time = s.closes_at or (datetime.combine(start.date(), start.time()) + timedelta(hours=1)).time()
        ev.add("dtend", datetime.combine(start.date(), end_time, TOKYO))
        ev.add("rrule", vRecur.from_ical(rrule_text(s)))
        if service.address:
            ev.add("location", service.address)
        text = s.description(locale)
        if service.phone:
            text = f"{text}\n{service.phone}".strip()
        if text:
            ev.add("description", text)
        cal.add_component(ev)
    if hasattr(cal, "add_missing_timezones"):
        cal.add_missing_timezones()
    return cal.to_ical()


def map_url(service: Service) -> str | None:
    """A plain link to a map search for the address (no embedded map)."""
    if service.latitude is not None and service.longitude is not None:
        return f"https://www.openstreetmap.org/?mlat={service.latitude}&mlon={service.longitude}#map=17/{service.latitude}/{service.longitude}"
    if not service.address:
        return None
    return "https://www.openstreetmap.org/search?query=" + urllib.parse.quote(service.address)


_DAY_NAMES = {
    "MO": _l("Monday"), "TU": _l("Tuesday"), "WE": _l("Wednesday"), "TH": _l("Thursday"),
    "FR": _l("Friday"), "SA": _l("Saturday"), "SU": _l("Sunday"),
}
_ORDINALS = {"1": _l("first"), "2": _l("second"), "3": _l("third"), "4": _l("fourth"), "-1": _l("last")}


def schedule_text(s: Schedule) -> str:
    """A schedule in words, in the current locale: "Every week: Monday, Wednesday, 15:00–18:00"."""
    days = []
    for part in s.byday.split(","):
        m = _BYDAY.match(part)
        if not m:
            continue
        name = str(_DAY_NAMES[m.group(2)])
        days.append(str(_l("%(nth)s %(day)s", nth=_ORDINALS[m.group(1)], day=name)) if m.group(1) else name)
    joined = str(_l(", ")).join(days)
    hours = f"{s.opens_at:%H:%M}–{s.closes_at:%H:%M}" if s.opens_at and s.closes_at else (f"{s.opens_at:%H:%M}–" if s.opens_at else "")
    if s.freq == "MONTHLY":
        text = str(_l("Every month: %(days)s", days=joined))
    else:
        text = str(_l("Every week: %(days)s", days=joined))
    return f"{text} {hours}".strip()


def ages_text(min_months: int | None, max_months: int | None) -> str:
    """An age range in words, in the current locale."""
    def one(m: int) -> str:
        if m % 12:
            return str(_l("%(y)d years %(m)d months", y=m // 12, m=m % 12))
        return str(_l("%(y)d years", y=m // 12))

    if min_months is None and max_months is None:
        return str(_l("All ages"))
    if max_months is None:
        return str(_l("From %(a)s", a=one(min_months)))
    top = one(max_months - max_months % 12) if max_months % 12 == 11 else one(max_months)
    if min_months is None or min_months == 0:
        return str(_l("Up to %(b)s", b=top))
    return str(_l("%(a)s to %(b)s", a=one(min_months), b=top))
