"""Pages: the catalogue for families (and anyone), the coordinator's desk, letters for schools.

Anonymous browsing is allowed on purpose: the catalogue is public
information the municipality would put on its web site anyway, and a family
that never signs in must still be able to find help. Favourites and the
inbox need an account; drafts, imports and campaigns are the coordinator's.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal.auth.access import GUARDIAN, STUDENT, allow, public, visible_school_ids
from portal.bodylimit import accepts_files
from portal.extensions import db
from portal.i18n import TOKYO, select_locale
from portal.orm import utcnow
from portal.people.models import Child, School, SchoolClass
from resources import campaigns as camp
from resources import hsds, hsds_tabular, letters, opendata
from resources import service as catalogue
from resources.forms import (
    ActionForm,
    CampaignForm,
    ImportForm,
    ScheduleCampaignForm,
    SearchForm,
    ServiceForm,
)
from resources.models import Campaign, CampaignStatus, Service, ServiceStatus
from resources.service import ResourceError, ScheduleData, ServiceData

bp = Blueprint("resources", __name__, url_prefix="/resources", template_folder="templates",
               static_folder="static", static_url_path="/static/resources")

COORDINATOR = "coordinator"
LETTER_ROLES = ("teacher", "school_lead")


def _session():
    return db.session


def _locale() -> str:
    return select_locale()


def _kid_words() -> bool:
    return getattr(current_user, "role", None) == STUDENT


# -- families and everyone ---------------------------------------------------------------


@bp.route("/")
@public
def browse():
    s = _session()
    form = SearchForm(request.args)
    form.district.choices = [("", _("All districts")), *[(d, d) for d in catalogue.districts(s)]]
    ages: list[tuple[str, int]] = []
    role = getattr(current_user, "role", None)
    if role == GUARDIAN:
        ages = catalogue.family_ages(s, current_user.id)
    elif role == STUDENT:
        child = s.get(Child, current_user.id)
        ages = [(child.name, catalogue.age_on(child.birth_date, catalogue._today()))]
    if "age" not in request.args and ages:
        form.age.data = ages[0][1]
    valid = form.validate() if request.args else True
    search = catalogue.Search(
        q=form.q.data or "", category=form.category.data or "",
        age_years=form.age.data if valid or not form.age.errors else None,
        district=form.district.data or "", language=form.language.data or "", free_only=bool(form.free.data),
    )
    if form.age.errors:
        search.age_years = None
    results = catalogue.find(s, search)
    favs = catalogue.favourite_ids(s, current_user) if role in (GUARDIAN, STUDENT) else set()
    return render_template("resources/browse.html", form=form, results=results, ages=ages, favs=favs,
                           kid=_kid_words(), locale=_locale())


def _visible_service(service_id: int) -> Service:
    s = _session()
    if getattr(current_user, "role", None) == COORDINATOR:
        service = s.get(Service, service_id)
    else:
        service = catalogue.published_or_none(s, service_id)
    if service is None:
        abort(404)
    return service


@bp.route("/<int:service_id>")
@public
def detail(service_id: int):
    service = _visible_service(service_id)
    role = getattr(current_user, "role", None)
    fav = service.id in catalogue.favourite_ids(_session(), current_user) if role in (GUARDIAN, STUDENT) else False
    return render_template("resources/detail.html", service=service, locale=_locale(), kid=_kid_words(),
                           map_url=catalogue.map_url(service), fav=fav, form=ActionForm())


@bp.route("/<int:service_id>/calendar.ics")
@public
def calendar(service_id: int):
    service = _visible_service(service_id)
    if not service.schedules:
        abort(404)
    return Response(catalogue.ics_for(service, _locale()), mimetype="text/calendar",
                    headers={"Content-Disposition": f'attachment; filename="mimamori-{service.id}.ics"'})


@bp.route("/<int:service_id>/favourite", methods=["POST"])
@allow(GUARDIAN, STUDENT)
def favourite(service_id: int):
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    s = _session()
    service = catalogue.published_or_none(s, service_id)
    if service is None:
        abort(404)
    saved = catalogue.toggle_favourite(s, current_user, service)
    s.commit()
    flash(_("Saved to your favourites.") if saved else _("Removed from your favourites."), "success")
    return redirect(url_for("resources.detail", service_id=service.id))


@bp.route("/favourites")
@allow(GUARDIAN, STUDENT)
def favourites():
    return render_template("resources/favourites.html", results=catalogue.favourites(_session(), current_user),
                           locale=_locale(), kid=_kid_words())


@bp.route("/inbox")
@allow(GUARDIAN)
def inbox():
    return render_template("resources/inbox.html", messages=camp.inbox(_session(), current_user.id), locale=_locale())


@bp.route("/inbox/<int:delivery_id>")
@allow(GUARDIAN)
def message(delivery_id: int):
    s = _session()
    d = camp.open_message(s, current_user.id, delivery_id)
    if d is None:
        abort(404)
    s.commit()
    return render_template("resources/message.html", delivery=d, campaign=d.campaign,
                           services=camp.campaign_services(s, d.campaign), locale=_locale())


# -- the coordinator's catalogue ----------------------------------------------------------


@bp.route("/manage/")
@allow(COORDINATOR)
def manage():
    s = _session()
    status = request.args.get("status") or None
    if status not in (None, *[x.value for x in ServiceStatus]):
        status = None
    due, hidden = catalogue.needing_recheck(s)
    return render_template("resources/manage.html", entries=catalogue.all_entries(s, status), status=status,
                           due=due, hidden=hidden, locale=_locale(), form=ActionForm())


def _data_from_form(form) -> ServiceData:
    min_m = None if form.min_age.data is None else form.min_age.data * 12 + (form.min_age_months.data or 0)
    max_m = None if form.max_age.data is None else form.max_age.data * 12 + 11
    schedules = []
    for row in form.schedules:
        if row.form.days.data:
            r = row.form
            schedules.append(ScheduleData(r.freq.data, r.byday(), r.opens_at.data, r.closes_at.data,
                                          r.description_ja.data or "", r.description_en.data or ""))
    return ServiceData(
        name_ja=form.name_ja.data or "", name_en=form.name_en.data or "",
        description_ja=form.description_ja.data or "", description_en=form.description_en.data or "",
        organization_name=form.organization_name.data or "", categories=form.categories.data or [],
        min_age_months=min_m, max_age_months=max_m, languages=form.languages.data or ["ja"],
        is_free=bool(form.is_free.data), fees_ja=form.fees_ja.data or "", fees_en=form.fees_en.data or "",
        phone=form.phone.data or "", email=form.email.data or "", url=form.url.data or "",
        location_name=form.location_name.data or "", address=form.address.data or "",
        postal_code=form.postal_code.data or "", district=form.district.data or "",
        accessibility_ja=form.accessibility_ja.data or "", accessibility_en=form.accessibility_en.data or "",
        latitude=form.latitude.data, longitude=form.longitude.data, schedules=schedules,
    )


def _form_from_service(service: Service):
    d = catalogue.data_from_service(service)
    form = ServiceForm(obj=None, data={
        "name_ja": d.name_ja, "name_en": d.name_en, "description_ja": d.description_ja,
        "description_en": d.description_en, "organization_name": d.organization_name, "categories": d.categories,
        "min_age": None if d.min_age_months is None else d.min_age_months // 12,
        "min_age_months": None if d.min_age_months is None else d.min_age_months % 12,
        "max_age": None if d.max_age_months is None else d.max_age_months // 12,
        "languages": d.languages, "is_free": d.is_free, "fees_ja": d.fees_ja, "fees_en": d.fees_en,
        "phone": d.phone, "email": d.email, "url": d.url, "location_name": d.location_name,
        "address": d.address, "postal_code": d.postal_code, "district": d.district,
        "accessibility_ja": d.accessibility_ja, "accessibility_en": d.accessibility_en,
        "latitude": d.latitude, "longitude": d.longitude,
        "schedules": [{"freq": sc.freq, "nth": "".join(ch for ch in sc.byday.split(",")[0] if not ch.isalpha()),
                       "days": [p.lstrip("-1234") for p in sc.byday.split(",")], "opens_at": sc.opens_at,
                       "closes_at": sc.closes_at, "description_ja": sc.description_ja,
                       "description_en": sc.description_en} for sc in d.schedules],
    })
    while len(form.schedules) < 2:
        form.schedules.append_entry()
    return form


def _error_to_field(form, exc: ResourceError) -> None:
    target = getattr(form, exc.field, None) if exc.field else None
    if target is not None and hasattr(target, "errors") and isinstance(target.errors, list):
        target.errors.append(str(exc.message))
    else:
        flash(str(exc.message), "error")


@bp.route("/manage/new", methods=["GET", "POST"])
@allow(COORDINATOR)
def new_service():
    form = ServiceForm()
    if form.validate_on_submit():
        s = _session()
        try:
            service = catalogue.save_service(s, current_user, _data_from_form(form))
        except ResourceError as exc:
            s.rollback()
            _error_to_field(form, exc)
        else:
            s.commit()
            flash(_("Draft saved."), "success")
            return redirect(url_for("resources.edit_service", service_id=service.id))
    return render_template("resources/service_form.html", form=form, service=None, locale=_locale())


@bp.route("/manage/<int:service_id>/edit", methods=["GET", "POST"])
@allow(COORDINATOR)
def edit_service(service_id: int):
    s = _session()
    service = s.get(Service, service_id) or abort(404)
    form = ServiceForm() if request.method == "POST" else _form_from_service(service)
    if form.validate_on_submit():
        try:
            catalogue.save_service(s, current_user, _data_from_form(form), service)
        except ResourceError as exc:
            s.rollback()
            service = s.get(Service, service_id)
            _error_to_field(form, exc)
        else:
            s.commit()
            flash(_("Changes saved."), "success")
            return redirect(url_for("resources.edit_service", service_id=service.id))
    return render_template("resources/service_form.html", form=form, service=service, locale=_locale(),
                           action_form=ActionForm())


def _service_action(service_id: int, fn, done: str):
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    s = _session()
    service = s.get(Service, service_id) or abort(404)
    try:
        fn(s, current_user, service)
    except ResourceError as exc:
        s.rollback()
        flash(str(exc.message), "error")
    else:
        s.commit()
        flash(done, "success")
    nxt = request.form.get("next", "")
    if not (nxt.startswith("/resources/") and "//" not in nxt and "\\" not in nxt):
        nxt = url_for("resources.edit_service", service_id=service_id)
    return redirect(nxt)


@bp.route("/manage/<int:service_id>/publish", methods=["POST"])
@allow(COORDINATOR)
def publish(service_id: int):
    return _service_action(service_id, catalogue.publish, _("Published: families can find it now."))


@bp.route("/manage/<int:service_id>/archive", methods=["POST"])
@allow(COORDINATOR)
def archive(service_id: int):
    return _service_action(service_id, catalogue.archive, _("Archived: families no longer see it."))


@bp.route("/manage/<int:service_id>/verify", methods=["POST"])
@allow(COORDINATOR)
def verify(service_id: int):
    return _service_action(service_id, catalogue.mark_verified, _("Marked as checked today."))


@bp.route("/manage/export.json")
@allow(COORDINATOR)
def export_json():
    locale = request.args.get("lang", "ja") if request.args.get("lang") in ("ja", "en") else "ja"
    body = hsds.export_json(_session(), locale)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="hsds-services-{locale}.json"'})


@bp.route("/manage/export.csv")
@allow(COORDINATOR)
def export_csv():
    locale = request.args.get("lang", "ja") if request.args.get("lang") in ("ja", "en") else "ja"
    body = "\ufeff" + hsds.export_csv(_session(), locale)
    return Response(body, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="services-{locale}.csv"'})


@bp.route("/manage/export-tables.zip")
@allow(COORDINATOR)
def export_tabular():
    """The HSDS tabular data package: datapackage.json and a CSV per table."""
    locale = request.args.get("lang", "ja") if request.args.get("lang") in ("ja", "en") else "ja"
    body = hsds_tabular.export_datapackage(_session(), locale)
    return Response(body, mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="hsds-tables-{locale}.zip"'})


@bp.route("/manage/import", methods=["GET", "POST"])
@allow(COORDINATOR)
@accepts_files
def import_file():
    form = ImportForm()
    problems: list[tuple[int, str]] = []
    if form.validate_on_submit():
        s = _session()
        raw = form.file.data.read()
        try:
            if form.kind.data == "opendata":
                result = opendata.import_facilities_csv(s, current_user, raw)
                message = _("Imported %(n)d drafts; %(k)d rows skipped.", n=result.created, k=result.skipped)
                problems = result.problems
            elif form.kind.data == "hsds_csv":
                created, updated = hsds_tabular.import_datapackage(s, current_user, raw, form.locale.data)
                message = _("Imported %(c)d new drafts and updated %(u)d entries.", c=created, u=updated)
            else:
                created, updated = hsds.import_json(s, current_user, raw, form.locale.data)
                message = _("Imported %(c)d new drafts and updated %(u)d entries.", c=created, u=updated)
        except ResourceError as exc:
            s.rollback()
            form.file.errors = [*form.file.errors, *str(exc.message).split("\n")]
        else:
            s.commit()
            flash(message, "success")
            if not problems:
                return redirect(url_for("resources.manage", status="draft"))
    return render_template("resources/import.html", form=form, problems=problems)


# -- campaigns -------------------------------------------------------------------------------


def _campaign_form(formdata=None, data=None):
    s = _session()
    form = CampaignForm(formdata=formdata, data=data) if data is not None else CampaignForm()
    locale = _locale()
    form.services.choices = [(x.id, x.name(locale)) for x in catalogue.all_entries(s, "published")]
    form.school_id.choices = [("", "—"), *[(str(sc.id), sc.name if locale == "ja" else (sc.name_en or sc.name))
                                           for sc in s.scalars(select(School).order_by(School.code))]]
    return form


def _campaign_data(form) -> camp.CampaignData:
    return camp.CampaignData(
        title_ja=form.title_ja.data or "", title_en=form.title_en.data or "", body_ja=form.body_ja.data or "",
        body_en=form.body_en.data or "", service_ids=form.services.data or [], audience=form.audience.data,
        school_id=int(form.school_id.data) if form.school_id.data else None, grades=form.grades.data or [],
        min_age=form.min_age.data, max_age=form.max_age.data)


@bp.route("/campaigns/")
@allow(COORDINATOR)
def campaigns():
    return render_template("resources/campaigns.html", campaigns=camp.list_campaigns(_session()), locale=_locale())


@bp.route("/campaigns/new", methods=["GET", "POST"])
@allow(COORDINATOR)
def new_campaign():
    form = _campaign_form()
    if request.method == "GET" and request.args.get("service", "").isdigit():
        form.services.data = [int(request.args["service"])]
    if form.validate_on_submit():
        s = _session()
        try:
            c = camp.save_campaign(s, current_user, _campaign_data(form))
        except ResourceError as exc:
            s.rollback()
            _error_to_field(form, exc)
        else:
            s.commit()
            flash(_("Campaign saved as a draft. Check the previews, then send or schedule it."), "success")
            return redirect(url_for("resources.campaign", campaign_id=c.id))
    return render_template("resources/campaign_form.html", form=form, campaign=None)


@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@allow(COORDINATOR)
def edit_campaign(campaign_id: int):
    s = _session()
    c = s.get(Campaign, campaign_id) or abort(404)
    if c.status == CampaignStatus.sent:
        flash(_("This campaign has already been sent and cannot be changed."), "error")
        return redirect(url_for("resources.campaign", campaign_id=c.id))
    if request.method == "GET":
        d = camp.data_from_campaign(c)
        form = _campaign_form(data={"title_ja": d.title_ja, "title_en": d.title_en, "body_ja": d.body_ja,
                                    "body_en": d.body_en, "services": d.service_ids, "audience": d.audience,
                                    "school_id": str(d.school_id or ""), "grades": d.grades,
                                    "min_age": d.min_age, "max_age": d.max_age})
    else:
        form = _campaign_form()
    if form.validate_on_submit():
        try:
            camp.save_campaign(s, current_user, _campaign_data(form), c)
        except ResourceError as exc:
            s.rollback()
            c = s.get(Campaign, campaign_id)
            _error_to_field(form, exc)
        else:
            s.commit()
            flash(_("Changes saved. The campaign is a draft again."), "success")
            return redirect(url_for("resources.campaign", campaign_id=c.id))
    return render_template("resources/campaign_form.html", form=form, campaign=c)


@bp.route("/campaigns/<int:campaign_id>")
@allow(COORDINATOR)
def campaign(campaign_id: int):
    s = _session()
    c = s.get(Campaign, campaign_id) or abort(404)
    counts = camp.audience_counts(s, c) if c.status != CampaignStatus.sent else None
    all_schools = list(s.scalars(select(School.id)))
    return render_template("resources/campaign.html", campaign=c, counts=counts, stats=camp.stats(s, c.id),
                           services=camp.campaign_services(s, c), schedule_form=ScheduleCampaignForm(),
                           form=ActionForm(), locale=_locale(),
                           letter_classes=letters.letters_by_class(s, c.id, all_schools),
                           school=s.get(School, c.audience_school_id) if c.audience_school_id else None)


@bp.route("/campaigns/<int:campaign_id>/preview/<locale>")
@allow(COORDINATOR)
def campaign_preview(campaign_id: int, locale: str):
    if locale not in ("ja", "en"):
        abort(404)
    s = _session()
    c = s.get(Campaign, campaign_id) or abort(404)
    rendered = camp.render_message(s, c, locale)
    return render_template("resources/campaign_preview.html", campaign=c, preview_locale=locale,
                           rendered=rendered, services=camp.campaign_services(s, c), public_url=camp.public_url)


@bp.route("/campaigns/<int:campaign_id>/schedule", methods=["POST"])
@allow(COORDINATOR)
def campaign_schedule(campaign_id: int):
    s = _session()
    c = s.get(Campaign, campaign_id) or abort(404)
    form = ScheduleCampaignForm()
    if not form.validate_on_submit():
        for e in form.when.errors:
            flash(str(e), "error")
        return redirect(url_for("resources.campaign", campaign_id=c.id))
    now = utcnow()
    when = form.when.data.replace(tzinfo=TOKYO) if form.when.data else None
    try:
        if when is None or when <= now:
            counts = camp.send_now(s, current_user, c, now)
            s.commit()  # the deliveries are recorded before any e-mail leaves
            camp.deliver_emails(s, campaign_id=c.id, checkpoint=s.commit)
            s.commit()
            flash(_("Sent: %(i)d inbox messages, %(e)d e-mails, %(l)d letters to print.",
                    i=counts.get("inbox", 0), e=counts.get("email", 0), l=counts.get("letter", 0)), "success")
        else:
            camp.schedule(s, current_user, c, when)
            s.commit()
            flash(_("Scheduled."), "success")
    except ResourceError as exc:
        s.rollback()
        flash(str(exc.message), "error")
    return redirect(url_for("resources.campaign", campaign_id=campaign_id))


@bp.route("/campaigns/<int:campaign_id>/unschedule", methods=["POST"])
@allow(COORDINATOR)
def campaign_unschedule(campaign_id: int):
    s = _session()
    c = s.get(Campaign, campaign_id) or abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        camp.unschedule(s, current_user, c)
        s.commit()
        flash(_("The campaign is a draft again."), "success")
    except ResourceError as exc:
        s.rollback()
        flash(str(exc.message), "error")
    return redirect(url_for("resources.campaign", campaign_id=campaign_id))


@bp.route("/campaigns/<int:campaign_id>/failed-to-letters", methods=["POST"])
@allow(COORDINATOR)
def campaign_failed_to_letters(campaign_id: int):
    s = _session()
    c = s.get(Campaign, campaign_id) or abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    n = camp.failed_emails_to_letters(s, current_user, c)
    s.commit()
    flash(_("%(n)d letters added for families whose e-mail failed.", n=n), "success")
    return redirect(url_for("resources.campaign", campaign_id=campaign_id))


# -- letters for schools -----------------------------------------------------------------------


def _letter_class_ids(s) -> set[int]:
    """Classes whose letters this staff member hands out: a teacher's homerooms, a lead's school."""
    if current_user.role == "teacher":
        q = select(SchoolClass.id).where(SchoolClass.homeroom_teacher_id == current_user.id)
    else:
        q = select(SchoolClass.id).where(SchoolClass.school_id.in_(visible_school_ids(current_user)))
    return set(s.scalars(q))


@bp.route("/letters/")
@allow(*LETTER_ROLES)
def letters_home():
    s = _session()
    rows = letters.letters_for_classes(s, _letter_class_ids(s))
    return render_template("resources/letters.html", rows=rows, locale=_locale(),
                           is_lead=current_user.role == "school_lead")


@bp.route("/letters/<int:campaign_id>/<int:class_id>.pdf")
@allow(*LETTER_ROLES)
def letters_pdf(campaign_id: int, class_id: int):
    s = _session()
    c = s.get(Campaign, campaign_id)
    if c is None or class_id not in _letter_class_ids(s):
        abort(404)
    pdf = letters.render_class_pdf(s, current_user, c, class_id)
    s.commit()
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="letters-{campaign_id}-{class_id}.pdf"'})


@bp.route("/letters/<int:campaign_id>/school-<int:school_id>.zip")
@allow("school_lead")
def letters_zip(campaign_id: int, school_id: int):
    s = _session()
    c = s.get(Campaign, campaign_id)
    if c is None or school_id not in set(s.scalars(visible_school_ids(current_user))):
        abort(404)
    body = letters.render_school_zip(s, current_user, c, school_id)
    s.commit()
    return Response(body, mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="letters-{campaign_id}-{school_id}.zip"'})
