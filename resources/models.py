"""Local support resources (HSDS 3.0 shaped) and campaigns to every family.

The catalogue follows Open Referral HSDS 3.0: an organisation provides
services; a service has a location (address, accessibility), schedules
(iCalendar-like recurrence), an age range, languages, cost, contact and
taxonomy categories, and the date it was last verified (``assured_date``).
Names and descriptions are kept per locale (ja, en).

Campaigns reach families through deliveries (inbox, e-mail, printed
letter). Nothing here refers to consent, surveys or screening: the audience
is chosen from the school roster only.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.orm import Base, UTCDateTime, utcnow


def new_uuid() -> str:
    return str(uuid.uuid4())


class ServiceStatus(enum.StrEnum):
    draft = "draft"
    published = "published"
    archived = "archived"


class Organization(Base):
    __tablename__ = "resource_organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name_ja: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    description_ja: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    website: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def name(self, locale: str) -> str:
        return (self.name_en if locale == "en" else "") or self.name_ja


class Service(Base):
    """A service (HSDS ``service`` with its one ``location``)."""

    __tablename__ = "resource_service"
    __table_args__ = (
        CheckConstraint(
            "min_age_months IS NULL OR max_age_months IS NULL OR min_age_months <= max_age_months",
            name="age_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("resource_organization.id"), index=True)
    status: Mapped[ServiceStatus] = mapped_column(
        Enum(ServiceStatus, native_enum=False, length=20), default=ServiceStatus.draft, index=True
    )
    name_ja: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    description_ja: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    # Ages in whole months (「1歳10か月」 = 22); None = no bound.
    min_age_months: Mapped[int | None] = mapped_column(Integer)
    max_age_months: Mapped[int | None] = mapped_column(Integer)
    languages: Mapped[str] = mapped_column(String(100), default="ja")  # ISO 639-1 codes, comma separated
    is_free: Mapped[bool] = mapped_column(Boolean, default=True)
    fees_ja: Mapped[str] = mapped_column(String(500), default="")
    fees_en: Mapped[str] = mapped_column(String(500), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    url: Mapped[str] = mapped_column(String(500), default="")
    # Location (HSDS location + address)
    location_name: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    postal_code: Mapped[str] = mapped_column(String(10), default="")
    district: Mapped[str] = mapped_column(String(100), default="", index=True)  # school district (学区)
    latitude: Mapped[float | None] = mapped_column()
    longitude: Mapped[float | None] = mapped_column()
    accessibility_ja: Mapped[str] = mapped_column(String(500), default="")
    accessibility_en: Mapped[str] = mapped_column(String(500), default="")
    last_verified_on: Mapped[date | None] = mapped_column(Date)  # HSDS assured_date
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    organization: Mapped[Organization | None] = relationship()
    schedules: Mapped[list[Schedule]] = relationship(
        back_populates="service", cascade="all, delete-orphan", order_by="Schedule.id"
    )
    categories: Mapped[list[ServiceCategory]] = relationship(
        cascade="all, delete-orphan", order_by="ServiceCategory.code"
    )

    def name(self, locale: str) -> str:
        return (self.name_en if locale == "en" else "") or self.name_ja

    def description(self, locale: str) -> str:
        return (self.description_en if locale == "en" else "") or self.description_ja

    def fees(self, locale: str) -> str:
        return (self.fees_en if locale == "en" else "") or self.fees_ja

    def accessibility(self, locale: str) -> str:
        return (self.accessibility_en if locale == "en" else "") or self.accessibility_ja

    @property
    def language_codes(self) -> list[str]:
        return [c for c in (self.languages or "").split(",") if c]

    @property
    def category_codes(self) -> list[str]:
        return [c.code for c in self.categories]


class ServiceCategory(Base):
    """A taxonomy term attached to a service (codes in ``resources.taxonomy``)."""

    __tablename__ = "resource_service_category"
    __table_args__ = (UniqueConstraint("service_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("resource_service.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40), index=True)


class Schedule(Base):
    """When a service is open: an HSDS schedule (RFC 5545 style recurrence)."""

    __tablename__ = "resource_schedule"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    service_id: Mapped[int] = mapped_column(ForeignKey("resource_service.id", ondelete="CASCADE"), index=True)
    freq: Mapped[str] = mapped_column(String(10), default="WEEKLY")  # WEEKLY | MONTHLY
    byday: Mapped[str] = mapped_column(String(40), default="")  # "MO,WE" or "2SA" (second Saturday)
    opens_at: Mapped[time | None] = mapped_column(Time)
    closes_at: Mapped[time | None] = mapped_column(Time)
    description_ja: Mapped[str] = mapped_column(String(300), default="")
    description_en: Mapped[str] = mapped_column(String(300), default="")

    service: Mapped[Service] = relationship(back_populates="schedules")

    def description(self, locale: str) -> str:
        return (self.description_en if locale == "en" else "") or self.description_ja


class Favourite(Base):
    """A service a guardian or a student saved."""

    __tablename__ = "resource_favourite"
    __table_args__ = (UniqueConstraint("owner_kind", "owner_id", "service_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(10))  # guardian | student
    owner_id: Mapped[int] = mapped_column(Integer, index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("resource_service.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- campaigns ------------------------------------------------------------------


class CampaignStatus(enum.StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    sent = "sent"


class Audience(enum.StrEnum):
    all = "all"
    school = "school"
    grades = "grades"
    ages = "ages"


class Campaign(Base):
    __tablename__ = "resource_campaign"
    __table_args__ = (
        CheckConstraint(
            "audience_min_age IS NULL OR audience_max_age IS NULL OR audience_min_age <= audience_max_age",
            name="audience_ages",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title_ja: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200), default="")
    body_ja: Mapped[str] = mapped_column(Text, default="")
    body_en: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[Audience] = mapped_column(Enum(Audience, native_enum=False, length=20), default=Audience.all)
    audience_school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"))
    audience_grades: Mapped[str] = mapped_column(String(40), default="")  # "1,2,3" (1-9 municipality-wide)
    audience_min_age: Mapped[int | None] = mapped_column(Integer)
    audience_max_age: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[CampaignStatus] = mapped_column(
        Enum(CampaignStatus, native_enum=False, length=20), default=CampaignStatus.draft, index=True
    )
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    resources: Mapped[list[CampaignResource]] = relationship(
        cascade="all, delete-orphan", order_by="CampaignResource.position"
    )

    def title(self, locale: str) -> str:
        return (self.title_en if locale == "en" else "") or self.title_ja

    def body(self, locale: str) -> str:
        return (self.body_en if locale == "en" else "") or self.body_ja

    @property
    def grade_list(self) -> list[int]:
        return [int(g) for g in (self.audience_grades or "").split(",") if g]


class CampaignResource(Base):
    __tablename__ = "resource_campaign_resource"
    __table_args__ = (UniqueConstraint("campaign_id", "service_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("resource_campaign.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("resource_service.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)

    service: Mapped[Service] = relationship()


class Channel(enum.StrEnum):
    inbox = "inbox"
    email = "email"
    letter = "letter"


class DeliveryStatus(enum.StrEnum):
    queued = "queued"  # e-mail waiting to be sent; letter waiting to be printed
    sending = "sending"  # claimed by a sender
    sent = "sent"  # in the inbox, accepted by the SMTP server, or printed
    failed = "failed"


class Delivery(Base):
    """One campaign reaching one family through one channel (never twice)."""

    __tablename__ = "resource_delivery"
    __table_args__ = (
        UniqueConstraint("campaign_id", "guardian_id", "channel"),
        # A child with no guardian on record gets one letter, addressed to the child's family.
        Index("uq_resource_delivery_child_letter", "campaign_id", "child_id", unique=True,
              sqlite_where=text("guardian_id IS NULL"), postgresql_where=text("guardian_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("resource_campaign.id", ondelete="CASCADE"), index=True)
    # None: a letter for a child with no guardian on record (child_id says whose family).
    guardian_id: Mapped[int | None] = mapped_column(ForeignKey("guardian.id", ondelete="CASCADE"), index=True)
    channel: Mapped[Channel] = mapped_column(Enum(Channel, native_enum=False, length=10))
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, native_enum=False, length=10), default=DeliveryStatus.queued, index=True
    )
    locale: Mapped[str] = mapped_column(String(5), default="ja")
    # Letters: the class whose teacher hands the letter out, and the child it goes home with.
    class_id: Mapped[int | None] = mapped_column(ForeignKey("school_class.id"), index=True)
    child_id: Mapped[int | None] = mapped_column(ForeignKey("child.id", ondelete="SET NULL"))
    error: Mapped[str] = mapped_column(String(200), default="")  # an SMTP code/class, never an address
    # E-mail: the Message-ID it was sent with, so a bounce arriving later finds its delivery.
    message_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    campaign: Mapped[Campaign] = relationship()
