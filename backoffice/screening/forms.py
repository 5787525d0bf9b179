"""Screening forms (every one a FlaskForm: CSRF)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from backoffice.screening.service import MAX_REASON_CHARS


class RuleSetForm(FlaskForm):
    title = StringField(_l("Title"), validators=[Optional(), Length(max=200)])
    source = TextAreaField(
        _l("Rules"),
        validators=[DataRequired(message=_l("Write at least one rule.")), Length(max=20000)],
        render_kw={"rows": 14, "spellcheck": "false", "class": "mono"},
    )


class ReviewForm(FlaskForm):
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=500)], render_kw={"rows": 2})


class ManualFlagForm(FlaskForm):
    reason = TextAreaField(
        _l("Why are you flagging this child?"),
        validators=[DataRequired(message=_l("Write why you are flagging this child.")), Length(max=MAX_REASON_CHARS)],
        render_kw={"rows": 3},
    )
    urgency = RadioField(
        _l("Urgency"),
        choices=[SelectChoice("1", _l("Low")), SelectChoice("2", _l("Medium")), SelectChoice("3", _l("High"))],
        default="2",
        validators=[InputRequired(message=_l("Choose an urgency: low, medium or high."))],
    )


class ResolveForm(FlaskForm):
    flag_id = HiddenField()
    outcome = RadioField(
        _l("Decision"),
        choices=[
            SelectChoice("confirmed", _l("Support is needed (flag confirmed)")),
            SelectChoice("not_needed", _l("No support needed (flag overridden)")),
        ],
        validators=[InputRequired(message=_l("Choose a decision."))],
    )
    reason = TextAreaField(_l("What did the school decide, and why?"), validators=[Optional(), Length(max=MAX_REASON_CHARS)],
                           render_kw={"rows": 2})
