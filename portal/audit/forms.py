from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, IntegerField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from portal.auth.access import STAFF_ROLES
from portal.people.labels import role_label


def _role_choices():
    roles = [*STAFF_ROLES, "guardian", "student", "system"]
    return [SelectChoice("", _l("Any role")), *(SelectChoice(r, role_label(r)) for r in roles)]


class AuditSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    action = StringField(_l("Action"), validators=[Optional(), Length(max=60)],
                         render_kw={"list": "audit-actions", "autocomplete": "off"})
    role = SelectField(_l("Role"), choices=_role_choices, validators=[Optional()])
    child_id = IntegerField(_l("Child ID"), validators=[Optional()])
    actor_id = IntegerField(_l("Staff ID"), validators=[Optional()])
    since = DateField(_l("From"), validators=[Optional()])
    until = DateField(_l("To"), validators=[Optional()])

    def validate_child_id(self, field):
        if field.data is not None and field.data < 1:
            raise ValidationError(_l("Enter a positive number."))

    validate_actor_id = validate_child_id

    def validate_until(self, field):
        if field.data and self.since.data and field.data < self.since.data:
            raise ValidationError(_l("The end date is before the start date."))
