from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    FieldList,
    FloatField,
    Form,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
    URLField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from resources.service import LANGUAGES
from resources.taxonomy import CATEGORIES


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def category_choices(blank=None) -> list[SelectChoice]:
    out = [SelectChoice(code, label) for code, label in CATEGORIES.items()]
    return [SelectChoice("", blank), *out] if blank else out


def language_choices(blank=None) -> list[SelectChoice]:
    out = [SelectChoice(code, name) for code, name in LANGUAGES.items()]
    return [SelectChoice("", blank), *out] if blank else out


DAY_CHOICES = [
    SelectChoice("MO", _l("Mon")), SelectChoice("TU", _l("Tue")), SelectChoice("WE", _l("Wed")),
    SelectChoice("TH", _l("Thu")), SelectChoice("FR", _l("Fri")), SelectChoice("SA", _l("Sat")),
    SelectChoice("SU", _l("Sun")),
]


class ScheduleRow(Form):
    freq = SelectField(_l("Repeats"), default="WEEKLY", choices=[SelectChoice("WEEKLY", _l("Every week")), SelectChoice("MONTHLY", _l("Every month"))])
    nth = SelectField(_l("Which week (monthly)"), validators=[Optional()], choices=[
        SelectChoice("", "—"), SelectChoice("1", _l("first")), SelectChoice("2", _l("second")),
        SelectChoice("3", _l("third")), SelectChoice("4", _l("fourth")), SelectChoice("-1", _l("last"))])
    days = MultiCheckboxField(_l("Days"), choices=DAY_CHOICES, validators=[Optional()])
    opens_at = TimeField(_l("Opens"), validators=[Optional()])
    closes_at = TimeField(_l("Closes"), validators=[Optional()])
    description_ja = StringField(_l("Note (Japanese)"), validators=[Optional(), Length(max=300)])
    description_en = StringField(_l("Note (English)"), validators=[Optional(), Length(max=300)])

    def byday(self) -> str:
        nth = self.nth.data if self.freq.data == "MONTHLY" else ""
        return ",".join(f"{nth or ''}{d}" for d in self.days.data or [])


class ServiceForm(FlaskForm):
    name_ja = StringField(_l("Name (Japanese)"), validators=[DataRequired(), Length(max=200)])
    name_en = StringField(_l("Name (English)"), validators=[Optional(), Length(max=200)])
    description_ja = TextAreaField(_l("Description (Japanese)"), validators=[Optional(), Length(max=4000)])
    description_en = TextAreaField(_l("Description (English)"), validators=[Optional(), Length(max=4000)])
    organization_name = StringField(_l("Organisation"), validators=[Optional(), Length(max=200)])
    categories = MultiCheckboxField(_l("Categories"), choices=category_choices, validators=[Optional()])
    min_age = IntegerField(_l("Youngest age (years)"), validators=[Optional(), NumberRange(0, 120)])
    min_age_months = IntegerField(_l("and months"), validators=[Optional(), NumberRange(0, 11)])
    max_age = IntegerField(_l("Oldest age (years)"), validators=[Optional(), NumberRange(0, 120)])
    languages = MultiCheckboxField(_l("Languages spoken"), choices=language_choices, default=["ja"], validators=[Optional()])
    is_free = BooleanField(_l("Free of charge"), default=True)
    fees_ja = StringField(_l("Fees (Japanese)"), validators=[Optional(), Length(max=500)])
    fees_en = StringField(_l("Fees (English)"), validators=[Optional(), Length(max=500)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])
    email = EmailField(_l("E-mail"), validators=[Optional(), Email(), Length(max=254)])
    url = URLField(_l("Web site"), validators=[Optional(), Length(max=500)])
    location_name = StringField(_l("Place name"), validators=[Optional(), Length(max=200)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
    postal_code = StringField(_l("Postal code"), validators=[Optional(), Length(max=10)])
    district = StringField(_l("School district (leave empty for the whole city)"), validators=[Optional(), Length(max=100)])
    latitude = FloatField(_l("Latitude (for the map link)"), validators=[Optional(), NumberRange(-90, 90)])
    longitude = FloatField(_l("Longitude (for the map link)"), validators=[Optional(), NumberRange(-180, 180)])
    accessibility_ja = StringField(_l("Accessibility (Japanese)"), validators=[Optional(), Length(max=500)])
    accessibility_en = StringField(_l("Accessibility (English)"), validators=[Optional(), Length(max=500)])
    schedules = FieldList(FormField(ScheduleRow), min_entries=2, max_entries=5)

    def validate_url(self, field):
        if field.data and not field.data.startswith(("https://", "http://")):
            raise ValidationError(_l("A web address starts with https://"))


class SearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField(_l("Search"), validators=[Optional(), Length(max=100)])
    category = SelectField(_l("Category"), validators=[Optional()], choices=lambda: category_choices(_l("All categories")))
    age = IntegerField(_l("Child's age"), validators=[Optional(), NumberRange(0, 20, message=_l("Give an age between 0 and 20."))])
    district = SelectField(_l("School district"), validators=[Optional()], choices=[])
    language = SelectField(_l("Language"), validators=[Optional()], choices=lambda: language_choices(_l("Any language")))
    free = BooleanField(_l("Free only"))


class CampaignForm(FlaskForm):
    title_ja = StringField(_l("Title (Japanese)"), validators=[DataRequired(), Length(max=200)])
    title_en = StringField(_l("Title (English)"), validators=[Optional(), Length(max=200)])
    body_ja = TextAreaField(_l("Message (Japanese)"), validators=[Optional(), Length(max=4000)])
    body_en = TextAreaField(_l("Message (English)"), validators=[Optional(), Length(max=4000)])
    services = MultiCheckboxField(_l("Resources to include"), coerce=int, choices=[], validators=[Optional()])
    audience = RadioField(_l("Audience"), default="all", choices=[
        SelectChoice("all", _l("All families")), SelectChoice("school", _l("One school")),
        SelectChoice("grades", _l("Grades")), SelectChoice("ages", _l("Children's ages"))])
    school_id = SelectField(_l("School"), validators=[Optional()], choices=[])
    grades = MultiCheckboxField(_l("Grades"), coerce=int, validators=[Optional()], choices=[
        SelectChoice(g, _l("Elementary %(n)d", n=g) if g <= 6 else _l("Junior high %(n)d", n=g - 6)) for g in range(1, 10)])
    min_age = IntegerField(_l("From age"), validators=[Optional(), NumberRange(0, 20)])
    max_age = IntegerField(_l("To age"), validators=[Optional(), NumberRange(0, 20)])


class ScheduleCampaignForm(FlaskForm):
    when = DateTimeLocalField(_l("Send at (leave empty to send now)"), validators=[Optional()], format="%Y-%m-%dT%H:%M")


class ActionForm(FlaskForm):
    """A button that changes something (CSRF only)."""


class ImportForm(FlaskForm):
    kind = SelectField(_l("File type"), choices=[
        SelectChoice("hsds_json", _l("HSDS 3.0 JSON")), SelectChoice("hsds_csv", _l("HSDS CSV (tables zip, or services.csv)")),
        SelectChoice("opendata", _l("子育て施設一覧 CSV (open data)"))])
    locale = SelectField(_l("Language of the file"), choices=[SelectChoice("ja", "日本語"), SelectChoice("en", "English")])
    file = FileField(_l("File"), validators=[FileRequired(_l("Choose a file."))])
