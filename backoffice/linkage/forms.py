from __future__ import annotations

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import HiddenField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Optional, Regexp

from backoffice.linkage.catalogue import load


class UploadForm(FlaskForm):
    source = SelectField(_l("Source"), validators=[DataRequired()])
    file = FileField(_l("File (CSV in UTF-8 or Shift_JIS, or Excel .xlsx)"),
                     validators=[FileRequired(_l("Choose a file to upload."))])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        locale = str(get_locale() or "ja")
        self.source.choices = [SelectChoice(s.key, f"{s.label(locale)} ({s.key})") for s in load().sources.values()]


class ConfirmForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Regexp(r"^[0-9a-f]{64}$")])  # the file's SHA-256
    source = HiddenField(validators=[DataRequired()])
    rows = HiddenField(validators=[Optional(), Regexp(r"^[0-9]{1,9}$")])  # from the preview, for the progress bar


class ActionForm(FlaskForm):
    """A bare CSRF-protected action (rollback)."""
