from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.auth.passwords import MIN_PASSWORD_LENGTH
from portal.i18n import LANGUAGE_NAMES
from portal.people.labels import role_label
from portal.people.models import Role


def role_choices() -> list[SelectChoice]:
    return [SelectChoice(r.value, role_label(r)) for r in Role]


def locale_choices() -> list[SelectChoice]:
    return [SelectChoice(code, name) for code, name in LANGUAGE_NAMES.items()]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class _StaffFields(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    role = SelectField(_l("Role"), choices=role_choices)
    locale = SelectField(_l("Language"), choices=locale_choices, default="ja")
    schools = MultiCheckboxField(_l("Schools"), coerce=int, validators=[Optional()])
    classes = SelectMultipleField(_l("Homeroom classes (teachers)"), coerce=int, validators=[Optional()])


class NewStaffForm(_StaffFields):
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Email(), Length(max=254)])


class EditStaffForm(_StaffFields):
    pass


class StaffFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField(_l("Name or e-mail"), validators=[Optional(), Length(max=100)])
    role = SelectField(_l("Role"), validators=[Optional()],
                       choices=lambda: [SelectChoice("", _l("Any role")), *role_choices()])
    status = SelectField(_l("Status"), validators=[Optional()], choices=lambda: [
        SelectChoice("", _l("Any")), SelectChoice("active", _l("Active")), SelectChoice("inactive", _l("Deactivated"))])


class ChangePasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(
        _l("New password (at least %(n)d characters)", n=MIN_PASSWORD_LENGTH),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=200)],
    )
    password_again = PasswordField(
        _l("New password again"),
        validators=[DataRequired(), EqualTo("password", message=_l("The two passwords are not the same."))],
    )
