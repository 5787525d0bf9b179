"""Keep tokens and personal data out of the logs.

Request log lines (Werkzeug's development server, gunicorn's access log,
Flask's "Exception on /path") carry the URL, and some URLs are secrets: the
password-reset link, the student's QR card (``/student/card?t=…``), search
terms typed by staff. :class:`RedactingFilter` rewrites every record before
any handler sees it:

- a query string becomes ``?[redacted]``;
- a path segment that looks like a token (long and URL-safe) becomes
  ``[token]``;
- an e-mail address anywhere in the message becomes ``[email]``.

:func:`install` puts the filter on the loggers that write request lines and
on the root handlers, once.
"""

from __future__ import annotations

import logging
import re

# ?a=b&c=d up to the next space or quote (the request line ends there).
_QUERY = re.compile(r"\?[^\s\"'<>]*")
# /<segment> of 24+ URL-safe characters: reset tokens, card tokens, signed values.
_TOKEN_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_\-.~%=]{24,}(?=[/\s\"'?]|$)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")

# Loggers whose records carry URLs; the filter sits on them directly so that
# records are clean before they propagate to any handler.
URL_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "portal", "flask.app")


def redact(text: str) -> str:
    text = _EMAIL.sub("[email]", text)
    text = _QUERY.sub("?[redacted]", text)
    return _TOKEN_SEGMENT.sub("[token]", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error path
            return True
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = ()
        return True


_FILTER = RedactingFilter()


def install() -> None:
    """Idempotent: safe to call from every create_app."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
