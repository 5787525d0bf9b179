from __future__ import annotations

import email_validator
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, Length, Regexp

from portal.auth.passwords import MIN_PASSWORD_LENGTH

# The demo municipality and the tests use RFC 2606's reserved ".invalid" domain
# (it can never reach a real person). email-validator refuses special-use
# domains by default, which made every demo sign-in fail form validation.
if "invalid" in email_validator.SPECIAL_USE_DOMAIN_NAMES:
    email_validator.SPECIAL_USE_DOMAIN_NAMES.remove("invalid")


def _strip(value):
    """Phones add a space after an autocompleted address; it is not part of it."""
    return value.strip() if isinstance(value, str) else value


class StaffSignInForm(FlaskForm):
    email = EmailField(_l("E-mail address"), filters=[_strip], validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class TotpForm(FlaskForm):
    code = StringField(
        _l("6-digit code from your authenticator app"),
        validators=[DataRequired(), Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message=_l("Enter the 6 digits."))],
        render_kw={"inputmode": "numeric", "autocomplete": "one-time-code"},
    )


class GuardianSignInForm(FlaskForm):
    email = EmailField(_l("E-mail address"), filters=[_strip], validators=[DataRequired(), Email()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class GuardianRegisterForm(FlaskForm):
    code = StringField(
        _l("Enrolment code (on the letter from the school)"),
        validators=[DataRequired(), Length(min=12, max=20)],
        render_kw={"autocomplete": "off", "autocapitalize": "characters"},
    )
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=100)])
    relationship = SelectField(
        _l("Relationship to the child"),
        choices=[
            SelectChoice("mother", _l("Mother")),
            SelectChoice("father", _l("Father")),
            SelectChoice("grandparent", _l("Grandparent")),
            SelectChoice("other", _l("Other guardian")),
        ],
    )
    email = EmailField(_l("E-mail address"), filters=[_strip], validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(
        _l("Password (at least %(n)d characters)", n=MIN_PASSWORD_LENGTH),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=200)],
    )
    password_again = PasswordField(
        _l("Password again"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords do not match."))]
    )


class AddChildForm(FlaskForm):
    code = StringField(
        _l("Enrolment code (on the letter from the school)"),
        validators=[DataRequired(), Length(min=12, max=20)],
        render_kw={"autocomplete": "off"},
    )


class ResendForm(FlaskForm):
    """A button only (its CSRF token)."""


class PasswordResetRequestForm(FlaskForm):
    email = EmailField(_l("E-mail address"), filters=[_strip], validators=[DataRequired(), Email()])


class PasswordResetForm(FlaskForm):
    password = PasswordField(
        _l("New password (at least %(n)d characters)", n=MIN_PASSWORD_LENGTH),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=200)],
    )
    password_again = PasswordField(
        _l("Password again"), validators=[DataRequired(), EqualTo("password", message=_l("The passwords do not match."))]
    )


class StudentSignInForm(FlaskForm):
    student_no = StringField(
        _l("Your number"),  # "Student number" is the staff's word (児童生徒番号); this is for the child
        validators=[DataRequired(), Length(max=20)],
        render_kw={"inputmode": "numeric", "autocomplete": "username"},
    )
    pin = PasswordField(
        _l("PIN"),
        validators=[DataRequired(), Length(min=4, max=8)],
        render_kw={"inputmode": "numeric", "autocomplete": "current-password"},
    )


class LanguageForm(FlaskForm):
    locale = SelectField(_l("Language"), choices=[SelectChoice("ja", "日本語"), SelectChoice("en", "English")])
