"""Casework forms. Every form carries CSRF; case forms carry the case's version."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    FieldList,
    FormField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.form import Form
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from backoffice.casework import labels
from backoffice.casework.models import CloseReason, Concern, Decision, Proposal, ReferralTarget

NOTE = [Optional(), Length(max=4000)]


def _choices(table: dict, codes) -> list[SelectChoice]:
    return [SelectChoice(c.value, labels.label(table, c)) for c in codes]


class VersionForm(FlaskForm):
    version = HiddenField(validators=[InputRequired()])


class AssessmentForm(VersionForm):
    attendance = SelectField(_l("Attendance"), default=Concern.none.value)
    attendance_note = TextAreaField(_l("Notes on attendance"), validators=NOTE)
    learning = SelectField(_l("Learning"), default=Concern.none.value)
    learning_note = TextAreaField(_l("Notes on learning"), validators=NOTE)
    health = SelectField(_l("Health and hygiene"), default=Concern.none.value)
    health_note = TextAreaField(_l("Notes on health and hygiene"), validators=NOTE)
    relationships = SelectField(_l("Relationships"), default=Concern.none.value)
    relationships_note = TextAreaField(_l("Notes on relationships"), validators=NOTE)
    family_contact = SelectField(_l("Family contact"), default=Concern.none.value)
    family_contact_note = TextAreaField(_l("Notes on family contact"), validators=NOTE)
    child_voice = TextAreaField(_l("The child's own words"), validators=NOTE)
    notes = TextAreaField(_l("Other notes"), validators=NOTE)
    proposal = RadioField(_l("Proposal to the school"), validators=[InputRequired(_l("Please choose a proposal."))])
    review_date = DateField(_l("Review date (when keeping watch)"), validators=[Optional()])
    no_concern_reason = TextAreaField(_l("Why there is no concern (recorded as an override of the flag)"),
                                      validators=NOTE)
    submit = SubmitField(_l("Save the assessment"))

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        for name in ("attendance", "learning", "health", "relationships", "family_contact"):
            self[name].choices = _choices(labels.CONCERN, Concern)
        self.proposal.choices = _choices(labels.PROPOSAL, Proposal)


class MeetingForm(FlaskForm):
    held_on = DateField(_l("Meeting date"), validators=[InputRequired(_l("Please give a date."))])
    school_id = SelectField(_l("School"), coerce=int)
    submit = SubmitField(_l("Create the meeting"))


class MultiCheckbox(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class AttendeesForm(FlaskForm):
    attendees = MultiCheckbox(_l("Staff who attended"), coerce=int, validators=[Optional()])
    other_attendees = TextAreaField(_l("Other attendees (without an account)"), validators=NOTE)
    submit_attendees = SubmitField(_l("Save attendees"))


class ListCaseForm(FlaskForm):
    case_id = SelectField(_l("Case"), coerce=int)
    submit_list = SubmitField(_l("Add to the meeting"))


class DecisionForm(VersionForm):
    case_id = HiddenField()
    decision = SelectField(_l("School decision"), validators=[InputRequired()])
    review_date = DateField(_l("Review date (when keeping watch)"), validators=[Optional()])
    note = TextAreaField(_l("Note (the reason, when closing)"), validators=NOTE)
    submit_decision = SubmitField(_l("Record the decision"))

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.decision.choices = _choices(labels.DECISION, Decision)


class ActionForm(Form):
    text = StringField(_l("Support action"), validators=[Optional(), Length(max=500)])
    owner_id = SelectField(_l("Owner"), coerce=int, validate_choice=False)
    due_on = DateField(_l("Due date"), validators=[Optional()])


class PlanForm(VersionForm):
    goals = TextAreaField(_l("Goals (one a line)"), validators=[DataRequired(_l("Please give at least one goal.")),
                                                                 Length(max=4000)])
    actions = FieldList(FormField(ActionForm), min_entries=4, max_entries=12)
    review_date = DateField(_l("Review date"), validators=[InputRequired(_l("Please give a date."))])
    submit = SubmitField(_l("Save the plan"))


class ReferralForm(FlaskForm):
    target = SelectField(_l("Refer to"))
    receiver_id = SelectField(_l("Receiver (counsellor or social worker)"), coerce=int, validate_choice=False)
    service_id = SelectField(_l("Service from the catalogue"), coerce=int, validate_choice=False)
    reason = TextAreaField(_l("What is asked"), validators=NOTE)
    submit_referral = SubmitField(_l("Make the referral"))

    def __init__(self, *a, **kw):
        kw.setdefault("prefix", "ref")  # the case page holds several forms
        super().__init__(*a, **kw)
        self.target.choices = _choices(labels.TARGET, ReferralTarget)


class RespondForm(FlaskForm):
    note = TextAreaField(_l("Note (the reason, when rejecting)"), validators=NOTE)
    accept = SubmitField(_l("Accept"))
    reject = SubmitField(_l("Reject"))


class CloseForm(VersionForm):
    reason = SelectField(_l("Reason for closing"))
    note = TextAreaField(_l("Note"), validators=NOTE)
    submit_close = SubmitField(_l("Close the case"))

    def __init__(self, *a, **kw):
        kw.setdefault("prefix", "close")
        super().__init__(*a, **kw)
        self.reason.choices = _choices(labels.CLOSE_REASON,
                                       [r for r in CloseReason if r != CloseReason.consent_withdrawn])


class ContinueForm(VersionForm):
    review_date = DateField(_l("Next review date"), validators=[InputRequired(_l("Please give a date."))])
    submit_continue = SubmitField(_l("Continue the support"))

    def __init__(self, *a, **kw):
        kw.setdefault("prefix", "cont")
        super().__init__(*a, **kw)


class StartFromForm(FlaskForm):
    flag_id = IntegerField(validators=[Optional()])
    alert_id = IntegerField(validators=[Optional()])
