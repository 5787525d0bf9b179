"""Campaigns: a message with chosen resources, to every family in an audience.

The audience is chosen from the school roster only (all families, a school,
grades, children's ages). This module imports the people model and nothing
of consent, surveys or screening, so a campaign *cannot* be aimed by flags,
scores or consent (``tests/resources/test_isolation.py`` checks the imports).

Delivery, per family (guardian):

* inbox: every registered account, delivered at once (read receipts);
* e-mail: every family with an address, in the family's language, sent by
  :func:`deliver_emails` (claimed one by one, so none is sent twice);
* letter: families with no e-mail address, printed per class by
  ``resources.letters`` for the school to hand out.

A (campaign, family, channel) delivery exists at most once (unique
constraint), and a campaign is queued once (its status moves to ``sent``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from dateutil.relativedelta import relativedelta
from flask import current_app
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session, selectinload

from portal import mail, once
from portal.audit import service as audit
from portal.auth.principal import Principal
from portal.i18n import TOKYO
from portal.orm import utcnow
from portal.people.models import (
    Child,
    Enrolment,
    Guardian,
    GuardianChild,
    School,
    SchoolClass,
    SchoolYear,
)
from resources.models import (
    Audience,
    Campaign,
    CampaignResource,
    CampaignStatus,
    Channel,
    Delivery,
    DeliveryStatus,
    Service,
    ServiceStatus,
)
from resources.service import ResourceError, plain_text

EMAIL_BATCH = 500

# What a failure means, for the coordinator (the stored error is a code, never an address).
ERROR_LABELS = {
    "SMTPRecipientsRefused": _l("The address was refused by the mail server"),
    "bounced": _l("Bounced back after sending"),
    "no address": _l("No e-mail address any more"),
    "SMTPSenderRefused": _l("The mail server refused our sender address"),
    "SMTPDataError": _l("The mail server refused the message"),
    "SMTPAuthenticationError": _l("Could not sign in to the mail server"),
    "SMTPServerDisconnected": _l("The mail server could not be reached"),
    "SMTPConnectError": _l("The mail server could not be reached"),
    "ConnectionRefusedError": _l("The mail server could not be reached"),
    "TimeoutError": _l("The mail server could not be reached"),
    "OSError": _l("The mail server could not be reached"),
}


def error_label(error: str) -> str:
    """A stored failure ("bounced 5.1.1", "SMTPRecipientsRefused") in the coordinator's words."""
    head, _sep, code = (error or "").partition(" ")
    label = ERROR_LABELS.get(error) or ERROR_LABELS.get(head)
    if label is None:
        return error or str(_l("Unknown"))
    return f"{label} ({code})" if code and head == "bounced" else str(label)


class CampaignError(ResourceError):
    pass


@dataclass
class CampaignData:
    title_ja: str
    title_en: str = ""
    body_ja: str = ""
    body_en: str = ""
    service_ids: list[int] = field(default_factory=list)
    audience: str = Audience.all.value
    school_id: int | None = None
    grades: list[int] = field(default_factory=list)
    min_age: int | None = None
    max_age: int | None = None


def _validate(session: Session, data: CampaignData) -> None:
    if not data.title_ja.strip():
        raise CampaignError(_l("A Japanese title is required."), "title_ja")
    if not data.service_ids:
        raise CampaignError(_l("Choose at least one resource."), "services")
    published = set(session.scalars(select(Service.id).where(
        Service.id.in_(data.service_ids), Service.status == ServiceStatus.published)))
    if published != set(data.service_ids):
        raise CampaignError(_l("Only published resources can be sent."), "services")
    try:
        audience = Audience(data.audience)
    except ValueError as exc:
        raise CampaignError(_l("Choose an audience."), "audience") from exc
    if audience == Audience.school and (data.school_id is None or session.get(School, data.school_id) is None):
        raise CampaignError(_l("Choose a school."), "school_id")
    if audience == Audience.grades and (not data.grades or not all(1 <= g <= 9 for g in data.grades)):
        raise CampaignError(_l("Choose at least one grade."), "grades")
    if audience == Audience.ages:
        if data.min_age is None and data.max_age is None:
            raise CampaignError(_l("Give a minimum or a maximum age."), "min_age")
        for a in (data.min_age, data.max_age):
            if a is not None and not 0 <= a <= 20:
                raise CampaignError(_l("Ages must be between 0 and 20."), "min_age")
        if data.min_age is not None and data.max_age is not None and data.min_age > data.max_age:
            raise CampaignError(_l("The minimum age is above the maximum age: the age range is upside down."), "min_age")


def save_campaign(session: Session, actor: Principal, data: CampaignData, campaign: Campaign | None = None) -> Campaign:
    """Create or edit a draft (a scheduled campaign goes back to draft when edited)."""
    if campaign is not None:
        # Its lock, and its state as it is now: a campaign sent a moment ago is not edited back to a draft.
        once.lock(session, Campaign, campaign.id)
        session.refresh(campaign)
    if campaign is not None and campaign.status == CampaignStatus.sent:
        raise CampaignError(_l("This campaign has already been sent and cannot be changed."))
    _validate(session, data)
    creating = campaign is None
    if campaign is None:
        campaign = Campaign(created_by_id=actor.id if actor.kind == "staff" else None, title_ja="")
        session.add(campaign)
    # Titles become e-mail subjects: one line.
    campaign.title_ja = " ".join(plain_text(data.title_ja).split())
    campaign.title_en = " ".join(plain_text(data.title_en).split())
    campaign.body_ja = plain_text(data.body_ja)
    campaign.body_en = plain_text(data.body_en)
    campaign.audience = Audience(data.audience)
    campaign.audience_school_id = data.school_id if campaign.audience == Audience.school else None
    campaign.audience_grades = ",".join(str(g) for g in sorted(set(data.grades))) if campaign.audience == Audience.grades else ""
    campaign.audience_min_age = data.min_age if campaign.audience == Audience.ages else None
    campaign.audience_max_age = data.max_age if campaign.audience == Audience.ages else None
    campaign.status = CampaignStatus.draft
    campaign.scheduled_for = None
    campaign.resources = [CampaignResource(service_id=sid, position=i) for i, sid in enumerate(dict.fromkeys(data.service_ids))]
    session.flush()
    audit.record(session, actor, "resources.campaign_created" if creating else "resources.campaign_edited",
                 detail={"campaign_id": campaign.id})
    return campaign


def data_from_campaign(c: Campaign) -> CampaignData:
    return CampaignData(c.title_ja, c.title_en, c.body_ja, c.body_en, [r.service_id for r in c.resources],
                        c.audience.value, c.audience_school_id, c.grade_list, c.audience_min_age, c.audience_max_age)


def schedule(session: Session, actor: Principal, campaign: Campaign, when: datetime | None = None) -> None:
    """Schedule a draft for ``when`` (now when None)."""
    if campaign.status == CampaignStatus.sent:
        raise CampaignError(_l("This campaign has already been sent: it is never sent twice."))
    if not campaign.resources:
        raise CampaignError(_l("Choose at least one resource."))
    # Guarded: a campaign sent by another click a moment ago is not put back to "scheduled" (and sent again).
    if not once.claim(session, Campaign, campaign.id, Campaign.status != CampaignStatus.sent,
                      status=CampaignStatus.scheduled, scheduled_for=when or utcnow()):
        raise CampaignError(_l("This campaign has already been sent: it is never sent twice."))
    session.flush()
    audit.record(session, actor, "resources.campaign_scheduled", detail={"campaign_id": campaign.id})


def unschedule(session: Session, actor: Principal, campaign: Campaign) -> None:
    if campaign.status != CampaignStatus.scheduled or not once.claim(
            session, Campaign, campaign.id, Campaign.status == CampaignStatus.scheduled,
            status=CampaignStatus.draft, scheduled_for=None):
        raise CampaignError(_l("Only a scheduled campaign can be put back to draft."))
    session.flush()
    audit.record(session, actor, "resources.campaign_unscheduled", detail={"campaign_id": campaign.id})


# -- audience ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    guardian_id: int | None  # None: a child with no guardian on record (a letter home)
    registered: bool
    has_email: bool
    locale: str
    child_id: int
    class_id: int


def _audience_filter(q, campaign: Campaign, today: date):
    """Narrow a query over (Child, Enrolment, SchoolClass) to the campaign's audience: roster facts only."""
    if campaign.audience == Audience.school:
        q = q.where(SchoolClass.school_id == campaign.audience_school_id)
    elif campaign.audience == Audience.grades:
        q = q.where(SchoolClass.grade.in_(campaign.grade_list))
    elif campaign.audience == Audience.ages:
        if campaign.audience_min_age is not None:  # at least min years old today
            q = q.where(Child.birth_date <= today - relativedelta(years=campaign.audience_min_age))
        if campaign.audience_max_age is not None:  # not yet max+1 years old
            q = q.where(Child.birth_date > today - relativedelta(years=campaign.audience_max_age + 1))
    return q


def _audience_query(campaign: Campaign, today: date):
    year = select(SchoolYear.id).where(SchoolYear.is_current.is_(True)).scalar_subquery()
    q = (
        select(Guardian.id, Guardian.password_hash.is_not(None), Guardian.email.is_not(None), Guardian.locale,
               Child.id, Enrolment.class_id)
        .join(GuardianChild, GuardianChild.guardian_id == Guardian.id)
        .join(Child, Child.id == GuardianChild.child_id)
        .join(Enrolment, (Enrolment.child_id == Child.id) & (Enrolment.school_year_id == year))
        .join(SchoolClass, SchoolClass.id == Enrolment.class_id)
    )
    # The youngest child carries the family's letter home.
    return _audience_filter(q, campaign, today).order_by(Guardian.id, Child.birth_date.desc(), Child.id)


def _children_without_guardian_query(campaign: Campaign, today: date):
    """Children in the audience with no guardian on record: their family still gets a letter."""
    year = select(SchoolYear.id).where(SchoolYear.is_current.is_(True)).scalar_subquery()
    has_guardian = select(GuardianChild.child_id).where(GuardianChild.child_id == Child.id).exists()
    q = (
        select(Child.id, Enrolment.class_id)
        .join(Enrolment, (Enrolment.child_id == Child.id) & (Enrolment.school_year_id == year))
        .join(SchoolClass, SchoolClass.id == Enrolment.class_id)
        .where(~has_guardian)
    )
    return _audience_filter(q, campaign, today).order_by(Child.id)


def audience(session: Session, campaign: Campaign, today: date | None = None) -> list[Family]:
    """The families a campaign reaches: one per guardian, and one per child with no guardian on record."""
    today = today or datetime.now(TOKYO).date()
    families: dict[int, Family] = {}
    for gid, registered, has_email, locale, child_id, class_id in session.execute(_audience_query(campaign, today)):
        if gid not in families:
            families[gid] = Family(gid, bool(registered), bool(has_email), locale or "ja", child_id, class_id)
    orphans = [Family(None, False, False, "ja", child_id, class_id)
               for child_id, class_id in session.execute(_children_without_guardian_query(campaign, today))]
    return [*families.values(), *orphans]


def channels_for(f: Family) -> list[Channel]:
    out = []
    if f.registered:
        out.append(Channel.inbox)
    if f.has_email:
        out.append(Channel.email)
    else:
        out.append(Channel.letter)
    return out


def audience_counts(session: Session, campaign: Campaign, today: date | None = None) -> dict[str, int]:
    fams = audience(session, campaign, today)
    counts = Counter(ch.value for f in fams for ch in channels_for(f))
    return {"families": len(fams), **{c.value: counts.get(c.value, 0) for c in Channel}}


# -- queueing -------------------------------------------------------------------------------


def queue(session: Session, actor: Principal, campaign: Campaign, now: datetime | None = None) -> dict[str, int]:
    """Record one delivery per family and channel; the campaign becomes ``sent``.

    Refuses a campaign already sent. Inbox deliveries are delivered at once;
    e-mails and letters wait for :func:`deliver_emails` and the school's print.
    """
    now = now or utcnow()
    # Claim the campaign: only one caller moves it out of "scheduled".
    claimed = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == CampaignStatus.scheduled)
        .values(status=CampaignStatus.sent, sent_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        session.refresh(campaign)
        if campaign.status == CampaignStatus.sent:
            raise CampaignError(_l("This campaign has already been sent: it is never sent twice."))
        raise CampaignError(_l("Schedule the campaign before sending it."))
    session.refresh(campaign)
    already = {(gid if gid is not None else ("child", cid), ch) for gid, cid, ch in session.execute(
        select(Delivery.guardian_id, Delivery.child_id, Delivery.channel).where(Delivery.campaign_id == campaign.id))}
    rows = []
    for f in audience(session, campaign, now.astimezone(TOKYO).date()):
        key = f.guardian_id if f.guardian_id is not None else ("child", f.child_id)
        for ch in channels_for(f):
            if (key, ch) in already:
                continue
            row = {"campaign_id": campaign.id, "guardian_id": f.guardian_id, "channel": ch, "locale": f.locale,
                   "status": DeliveryStatus.queued, "created_at": now, "error": "",
                   "class_id": None, "child_id": None, "sent_at": None}
            if ch == Channel.inbox:
                row["status"], row["sent_at"] = DeliveryStatus.sent, now
            elif ch == Channel.letter:
                row["class_id"], row["child_id"] = f.class_id, f.child_id
            rows.append(row)
    for i in range(0, len(rows), 5000):
        session.execute(insert(Delivery), rows[i : i + 5000])
    session.flush()
    counts = Counter(r["channel"].value for r in rows)
    audit.record(session, actor, "resources.campaign_sent",
                 detail={"campaign_id": campaign.id, **{c.value: counts.get(c.value, 0) for c in Channel}})
    return dict(counts)


def send_now(session: Session, actor: Principal, campaign: Campaign, now: datetime | None = None) -> dict[str, int]:
    schedule(session, actor, campaign, now)
    return queue(session, actor, campaign, now)


# -- messages --------------------------------------------------------------------------------


def public_url(path: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + path


def _services(session: Session, campaign: Campaign) -> list[Service]:
    ids = [r.service_id for r in campaign.resources]
    by_id = {s.id: s for s in session.scalars(
        select(Service).where(Service.id.in_(ids)).options(selectinload(Service.schedules)))}
    return [by_id[i] for i in ids if i in by_id]


@dataclass
class Rendered:
    subject: str
    text: str
    html: str


def render_message(session: Session, campaign: Campaign, locale: str) -> Rendered:
    """The campaign in one language, as the e-mail (text and HTML) and the preview show it."""
    services = _services(session, campaign)
    with force_locale(locale):
        ctx = {"campaign": campaign, "services": services, "locale": locale, "public_url": public_url}
        # Rendered straight from the environment (no request context processors),
        # so the scheduler and the CLI render exactly what the preview shows.
        env = current_app.jinja_env
        return Rendered(
            subject=campaign.title(locale),
            text=env.get_template("resources/mail/campaign.txt").render(**ctx),
            html=env.get_template("resources/mail/campaign.html").render(**ctx),
        )


def deliver_emails(session: Session, *, limit: int = EMAIL_BATCH, checkpoint: Callable[[], None] | None = None,
                   campaign_id: int | None = None) -> dict[str, int]:
    """Send queued e-mails. Each is claimed (queued -> sending) before it is sent.

    ``checkpoint`` (the job's commit) runs after each claim and each result, so
    a crash never sends a message twice: a message left ``sending`` is shown as
    uncertain on the campaign page and not retried.
    """
    q = select(Delivery.id).where(Delivery.channel == Channel.email, Delivery.status == DeliveryStatus.queued)
    if campaign_id is not None:
        q = q.where(Delivery.campaign_id == campaign_id)
    ids = list(session.scalars(q.order_by(Delivery.id).limit(limit)))
    result = Counter()
    rendered: dict[tuple[int, str], Rendered] = {}
    for did in ids:
        claimed = session.execute(
            update(Delivery).where(Delivery.id == did, Delivery.status == DeliveryStatus.queued)
            .values(status=DeliveryStatus.sending).execution_options(synchronize_session=False)
        ).rowcount
        if checkpoint:
            checkpoint()
        if claimed != 1:
            continue
        d = session.get(Delivery, did)
        session.refresh(d)
        guardian = session.get(Guardian, d.guardian_id)
        if guardian is None or not guardian.email:
            d.status, d.error = DeliveryStatus.failed, "no address"
        else:
            key = (d.campaign_id, d.locale)
            if key not in rendered:
                rendered[key] = render_message(session, d.campaign, d.locale)
            r = rendered[key]
            msg = mail.build_message(guardian.email, r.subject, r.text, r.html)
            d.message_id = msg["Message-ID"]
            try:
                mail.send(msg)
                d.status, d.sent_at = DeliveryStatus.sent, utcnow()
            except mail.MailError as exc:
                d.status, d.error = DeliveryStatus.failed, str(exc)[:200] or "refused"
        result[d.status.value] += 1
        session.flush()
        if checkpoint:
            checkpoint()
    return dict(result)


def send_due_campaigns(session: Session, now: datetime | None = None, *,
                       checkpoint: Callable[[], None] | None = None, email_limit: int = EMAIL_BATCH) -> dict[str, int]:
    """The scheduler's job: queue every campaign due by ``now``, then send queued e-mails."""
    from portal.auth.principal import SYSTEM

    now = now or utcnow()
    due = list(session.scalars(select(Campaign).where(
        Campaign.status == CampaignStatus.scheduled, Campaign.scheduled_for <= now).order_by(Campaign.scheduled_for)))
    queued = 0
    for c in due:
        try:
            queue(session, SYSTEM, c, now)
            queued += 1
        except CampaignError:
            continue  # sent meanwhile by someone else
        if checkpoint:
            checkpoint()
    sent = deliver_emails(session, limit=email_limit, checkpoint=checkpoint)
    return {"campaigns": queued, **sent}


# -- what happened ---------------------------------------------------------------------------


def stats(session: Session, campaign_id: int) -> dict:
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for ch, st, n in session.execute(
        select(Delivery.channel, Delivery.status, func.count()).where(Delivery.campaign_id == campaign_id)
        .group_by(Delivery.channel, Delivery.status)
    ):
        counts[ch.value][st.value] = n
    reads = session.scalar(select(func.count()).where(
        Delivery.campaign_id == campaign_id, Delivery.channel == Channel.inbox, Delivery.read_at.is_not(None)))
    errors = dict(session.execute(
        select(Delivery.error, func.count()).where(Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.failed)
        .group_by(Delivery.error)).all())
    return {"counts": dict(counts), "reads": reads or 0, "errors": errors}


def failed_emails_to_letters(session: Session, actor: Principal, campaign: Campaign) -> int:
    """Print a letter for every family whose e-mail failed (nobody left out)."""
    once.lock(session, Campaign, campaign.id)  # of two clicks at once, the second finds the letters made
    failed = session.execute(
        select(Delivery.guardian_id, Delivery.locale).where(
            Delivery.campaign_id == campaign.id, Delivery.channel == Channel.email, Delivery.status == DeliveryStatus.failed)
    ).all()
    have = set(session.scalars(select(Delivery.guardian_id).where(
        Delivery.campaign_id == campaign.id, Delivery.channel == Channel.letter)))
    wanted = {gid: loc for gid, loc in failed if gid not in have}
    if not wanted:
        return 0
    homes = {f.guardian_id: f for f in audience(session, campaign) if f.guardian_id in wanted}
    n = 0
    for gid, loc in wanted.items():
        f = homes.get(gid)
        if f is None:
            continue
        session.add(Delivery(campaign_id=campaign.id, guardian_id=gid, channel=Channel.letter, locale=loc,
                             class_id=f.class_id, child_id=f.child_id))
        n += 1
    session.flush()
    audit.record(session, actor, "resources.campaign_letters_added", detail={"campaign_id": campaign.id, "count": n})
    return n


# -- the family's inbox ------------------------------------------------------------------------


def inbox(session: Session, guardian_id: int) -> list[Delivery]:
    return list(session.scalars(
        select(Delivery).where(Delivery.guardian_id == guardian_id, Delivery.channel == Channel.inbox)
        .options(selectinload(Delivery.campaign)).order_by(Delivery.created_at.desc(), Delivery.id.desc())))


def unread_count(session: Session, guardian_id: int) -> int:
    return session.scalar(select(func.count()).where(
        Delivery.guardian_id == guardian_id, Delivery.channel == Channel.inbox, Delivery.read_at.is_(None))) or 0


def open_message(session: Session, guardian_id: int, delivery_id: int, now: datetime | None = None) -> Delivery | None:
    """The guardian's own inbox message (None for anyone else's); the first open is the read receipt."""
    d = session.scalar(select(Delivery).where(
        Delivery.id == delivery_id, Delivery.guardian_id == guardian_id, Delivery.channel == Channel.inbox))
    if d is not None and d.read_at is None:
        d.read_at = now or utcnow()
        session.flush()
    return d


def campaign_services(session: Session, campaign: Campaign) -> list[Service]:
    return _services(session, campaign)


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())))
