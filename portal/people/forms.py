from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import InputRequired


class IssueCardsForm(FlaskForm):
    confirm = BooleanField(
        _l("I understand that every earlier PIN and card of this class stops working."),
        validators=[InputRequired(message=_l("Tick the box to confirm that the old PINs and cards will stop working."))],
    )


class IssueLettersForm(FlaskForm):
    confirm = BooleanField(
        _l("I understand that the codes on earlier letters for these children stop working."),
        validators=[InputRequired(message=_l("Tick the box to confirm that earlier letters will stop working."))],
    )
