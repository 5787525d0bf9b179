"""Languages: Japanese by default, English complete.

The locale is, in order: the signed-in user's saved choice, the choice
saved in the session (before sign-in), then Japanese. Dates and times are
shown in Asia/Tokyo.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app, has_request_context, session
from flask_babel import format_date, format_datetime
from flask_login import current_user

TOKYO = ZoneInfo("Asia/Tokyo")
LANGUAGE_NAMES = {"ja": "日本語", "en": "English"}


def select_locale() -> str:
    if not has_request_context():  # CLI, jobs, create_app inside another app's context
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    langs = current_app.config["LANGUAGES"]
    user_locale = getattr(current_user, "locale", None) if current_user else None
    if getattr(current_user, "is_authenticated", False) and user_locale in langs:
        return user_locale
    chosen = session.get("locale")
    if chosen in langs:
        return chosen
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def select_timezone() -> str:
    return "Asia/Tokyo"


def local_datetime(value: datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    return format_datetime(value, fmt)


def local_date(value: date | datetime | None, fmt: str = "medium") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(TOKYO).date()
    return format_date(value, fmt)
