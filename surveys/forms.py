from __future__ import annotations

from datetime import time

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, StringField, TextAreaField, TimeField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from surveys.models import Frequency


class AnswerForm(FlaskForm):
    """CSRF only: the items come from the instrument and are checked by surveys.scoring."""


class TalkForm(FlaskForm):
    pass


class AckForm(FlaskForm):
    note = TextAreaField(
        _l("What did you do, or what will you do?"),
        validators=[DataRequired(_l("Please write what you did or will do.")), Length(min=3, max=2000)],
    )


FREQUENCIES = [
    SelectChoice(Frequency.school_day.value, _l("Every school day")),
    SelectChoice(Frequency.weekly.value, _l("Weekly")),
    SelectChoice(Frequency.termly.value, _l("Once a term")),
]
WEEKDAYS = [
    SelectChoice("", _l("(not weekly)")),
    SelectChoice("0", _l("Monday")),
    SelectChoice("1", _l("Tuesday")),
    SelectChoice("2", _l("Wednesday")),
    SelectChoice("3", _l("Thursday")),
    SelectChoice("4", _l("Friday")),
]


class ScheduleTimesForm(FlaskForm):
    """What a schedule's edit may change: when and how often."""

    frequency = SelectField(_l("How often"), choices=FREQUENCIES, default=Frequency.school_day.value)
    weekday = SelectField(_l("Weekday (weekly only)"), choices=WEEKDAYS, default="")
    window_start = TimeField(_l("Opens at"), default=time(8, 0), validators=[InputRequired(_l("Enter a time."))])
    window_end = TimeField(_l("Closes at"), default=time(10, 0), validators=[InputRequired(_l("Enter a time."))])
    days_open = IntegerField(_l("Stays open for (days)"), default=0, validators=[Optional(), NumberRange(0, 60, _l("Between 0 and 60 days."))])
    reminder_minutes = IntegerField(
        _l("Reminder (minutes before closing)"), validators=[Optional(), NumberRange(1, 60 * 24 * 60, _l("Enter a positive number of minutes."))]
    )
    starts_on = DateField(_l("First day"), validators=[InputRequired(_l("Enter a date."))])
    ends_on = DateField(_l("Last day"), validators=[InputRequired(_l("Enter a date."))])


class ScheduleForm(ScheduleTimesForm):
    school_id = SelectField(_l("School"), coerce=int, validators=[InputRequired(_l("Choose a school."))])
    grade = IntegerField(_l("Grade (1-9)"), validators=[InputRequired(_l("Enter a grade.")), NumberRange(1, 9, _l("Grades run from 1 to 9."))])
    instrument_code = SelectField(_l("Questionnaire"), validators=[InputRequired(_l("Choose a questionnaire."))])


class ClosedDaysForm(FlaskForm):
    school_id = SelectField(_l("School"), coerce=int, validators=[InputRequired(_l("Choose a school."))])
    start = DateField(_l("First day"), validators=[InputRequired(_l("Enter a date."))])
    end = DateField(_l("Last day"), validators=[InputRequired(_l("Enter a date."))])
    reason = StringField(_l("Reason"), validators=[Optional(), Length(max=100)])
