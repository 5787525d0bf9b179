from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional


class DecisionForm(FlaskForm):
    """Grant or withdraw: the same one confirmation either way."""

    action = HiddenField(validators=[InputRequired()])
    last_event = HiddenField()
    confirm = BooleanField(validators=[DataRequired(message=_l("Tick the box to confirm."))])

    def validate_action(self, field):
        if field.data not in ("grant", "withdraw"):
            from wtforms.validators import ValidationError

            raise ValidationError(_l("Choose to give or withdraw consent."))

    def expected_last_event(self) -> int | None:
        raw = (self.last_event.data or "").strip()
        return int(raw) if raw.isdigit() else None


class RequestForm(FlaskForm):
    child_id = SelectField(_l("Child"), coerce=int, validators=[InputRequired(message=_l("Choose a child."))])
    kind = RadioField(
        _l("What do you ask for?"),
        choices=[
            SelectChoice("disclosure", _l("Disclosure: see everything held about my child (開示)")),
            SelectChoice("correction", _l("Correction: something held is wrong (訂正)")),
            SelectChoice("stop_use", _l("Stop of use for a purpose (利用停止)")),
        ],
        validators=[InputRequired(message=_l("Choose what you ask for."))],
    )
    purpose = SelectField(_l("Purpose (for a stop of use)"), validators=[Optional()])
    details = TextAreaField(_l("Details"), validators=[Optional(), Length(max=2000)])


class AnswerForm(FlaskForm):
    status = RadioField(
        _l("Outcome"),
        choices=[SelectChoice("completed", _l("Done as asked")), SelectChoice("refused", _l("Refused, with the reason"))],
        validators=[InputRequired(message=_l("Choose an outcome."))],
    )
    outcome = TextAreaField(
        _l("Answer to the family"),
        validators=[DataRequired(message=_l("Write the outcome the family will read.")), Length(max=4000)],
    )


class ReleaseForm(FlaskForm):
    confirm = BooleanField(
        _l("I have judged that giving these records to the family will not harm the child."),
        validators=[DataRequired(message=_l("Confirm your judgement first."))],
    )


class PaperForm(FlaskForm):
    student_no = StringField(_l("Student number (児童生徒番号)"), validators=[DataRequired(message=_l("Enter the student number.")), Length(max=20)])
    party = SelectField(
        _l("Signed by"),
        choices=[SelectChoice("guardian", _l("Guardian (保護者)")), SelectChoice("child", _l("The child (本人)"))],
    )
    signer = StringField(_l("Signer's name"), validators=[Optional(), Length(max=100)])
    purpose = SelectField(_l("Purpose"), validators=[DataRequired()])
    action = SelectField(
        _l("Decision"),
        choices=[SelectChoice("grant", _l("Consent (同意)")), SelectChoice("withdraw", _l("Withdrawal (撤回)"))],
    )
    signed_on = DateField(_l("Date signed"), validators=[InputRequired(message=_l("Enter the date on the form."))])
    form_no = StringField(_l("Form number (書面番号)"), validators=[Optional(), Length(max=40)])


class PaperFileForm(FlaskForm):
    file = FileField(_l("File (CSV or XLSX)"), validators=[FileRequired(message=_l("Choose a file."))])


class PublishForm(FlaskForm):
    title_ja = StringField(_l("Title (Japanese)"), validators=[DataRequired(), Length(max=200)])
    body_ja = TextAreaField(_l("Text for guardians (Japanese)"), validators=[DataRequired()])
    child_body_ja = TextAreaField(_l("Text for students (Japanese)"), validators=[Optional()])
    title_en = StringField(_l("Title (English)"), validators=[Optional(), Length(max=200)])
    body_en = TextAreaField(_l("Text for guardians (English)"), validators=[Optional()])
    child_body_en = TextAreaField(_l("Text for students (English)"), validators=[Optional()])
    material = BooleanField(_l("This is a material change: families are asked to consent again"))
    old_consent = RadioField(
        _l("Until they do, consent given on earlier versions"),
        choices=[SelectChoice("stands", _l("stands")), SelectChoice("lapses", _l("lapses at once"))],
        default="stands",
    )
    confirm = BooleanField(_l("I have checked the text: a published version cannot be changed"),
                           validators=[DataRequired(message=_l("Tick the box to confirm."))])


class PurposeForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(message=_l("Enter a code.")), Length(max=60)])
    title_ja = StringField(_l("Title (Japanese)"), validators=[DataRequired(message=_l("Enter a title in Japanese.")), Length(max=200)])
    title_en = StringField(_l("Title (English)"), validators=[Optional(), Length(max=200)])
    summary_ja = TextAreaField(_l("Plain-language explanation (Japanese)"), validators=[DataRequired(message=_l("Explain the purpose in Japanese."))])
    summary_en = TextAreaField(_l("Plain-language explanation (English)"), validators=[Optional()])
    child_summary_ja = TextAreaField(_l("Explanation for students (Japanese)"), validators=[Optional()])
    child_summary_en = TextAreaField(_l("Explanation for students (English)"), validators=[Optional()])
    data_items_ja = TextAreaField(_l("Data items (Japanese, one per line)"), validators=[Optional()])
    data_items_en = TextAreaField(_l("Data items (English, one per line)"), validators=[Optional()])
    sources_ja = TextAreaField(_l("Sources (Japanese, one per line)"), validators=[Optional()])
    sources_en = TextAreaField(_l("Sources (English, one per line)"), validators=[Optional()])
    users_ja = TextAreaField(_l("Who uses it (Japanese, one per line)"), validators=[Optional()])
    users_en = TextAreaField(_l("Who uses it (English, one per line)"), validators=[Optional()])
    retention_ja = StringField(_l("Retention (Japanese)"), validators=[Optional(), Length(max=200)])
    retention_en = StringField(_l("Retention (English)"), validators=[Optional(), Length(max=200)])
    retention_days = IntegerField(
        _l("Days the data is kept after a withdrawal (0: deleted at once)"), default=0,
        validators=[InputRequired(message=_l("Enter a number of days.")), NumberRange(min=0, max=3650, message=_l("Between 0 and 3650 days."))],
    )
    child_from_grade = IntegerField(
        _l("The child's own consent is required from grade (1-9; 10: never)"), default=7,
        validators=[InputRequired(message=_l("Enter a grade.")), NumberRange(min=1, max=10, message=_l("A grade from 1 to 10."))],
    )
