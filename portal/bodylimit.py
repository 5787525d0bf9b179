"""How large a request body each route accepts.

Every route takes at most ``MAX_FORM_BYTES`` (64 KiB: a form, however long
its text, is far below it), so nobody, signed in or not, can make a process
read and parse megabytes on any page. Routes that take a file say so:

    @bp.route("/upload", methods=["GET", "POST"])
    @allow(STEWARD)
    @accepts_files
    def upload(): ...

and get ``MAX_CONTENT_LENGTH`` (``MAX_UPLOAD_MB``), for the roles the route
lets in only (anyone else gets the form limit there too). A route whose form is
legitimately longer (the rule-set editor: 20,000 characters, which are up
to 9 bytes each once URL-encoded) names its own limit with
:func:`body_limit`. :func:`install` checks the declared ``Content-Length``
before anything reads the body (the 413 page, in the user's language) and
sets the per-request limit that Werkzeug enforces while reading a body sent
without a length (chunked). ``tests/security/test_body_limit.py`` walks
every POST route.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, abort, request

MAX_FORM_BYTES = 64 * 1024
_ATTR = "__mimamori_body_limit__"
UPLOAD = "upload"


def accepts_files(view: Callable) -> Callable:
    """This route takes a file upload: the upload limit (``MAX_CONTENT_LENGTH``) applies."""
    setattr(view, _ATTR, UPLOAD)
    return view


def body_limit(n_bytes: int) -> Callable[[Callable], Callable]:
    """This route (no file) accepts a form of up to ``n_bytes``."""

    def decorate(view: Callable) -> Callable:
        setattr(view, _ATTR, int(n_bytes))
        return view

    return decorate


def declared_limit(view: Callable | None):
    """``"upload"``, a number of bytes, or None (the form limit)."""
    return getattr(view, _ATTR, None) if view is not None else None


def limit_for(app: Flask, view: Callable | None, user=None) -> int:
    """The body limit of ``view`` for ``user``: a larger limit only for someone the
    route lets in (a stranger posting to an upload route gets the form limit)."""
    from portal.auth.access import check_route

    declared = declared_limit(view)
    if declared is not None and user is not None and check_route(view, user) != "ok":
        declared = None
    if declared == UPLOAD:
        return int(app.config["MAX_CONTENT_LENGTH"])
    if declared is not None:
        return int(declared)
    return int(app.config.get("MAX_FORM_BYTES", MAX_FORM_BYTES))


def install(app: Flask) -> None:
    """Register the check; call it before any other hook that may read the body (CSRF)."""

    from flask_login import current_user

    @app.before_request
    def _body_limit():
        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        limit = limit_for(app, view, current_user)
        request.max_content_length = limit
        if request.content_length is not None and request.content_length > limit:
            abort(413)
        return None
