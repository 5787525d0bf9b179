"""Mimamori (見守り): the application.

``flask --app portal`` is the contract: :func:`create_app` builds the
application, binds the extensions and registers every domain's blueprint
and commands.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import uuid
from datetime import datetime
from pathlib import Path

from flask import Flask, g, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFError

from portal.config import load_config
from portal.extensions import babel, csrf, db, limiter, login_manager, migrate

# Domains in dependency order. Each may have models, views (a blueprint named
# ``bp``), cli (a ``register(app)`` function) and demo modules.
DOMAINS = [
    "portal.people",
    "portal.audit",
    "portal.auth",
    "portal.public",
    "portal.family",
    "portal.student",
    "portal.admin",
    "consent",
    "surveys",
    "resources",
    "backoffice",
    "backoffice.linkage",
    "backoffice.screening",
    "backoffice.casework",
    "portal.maintenance",
]

log = logging.getLogger(__name__)


def _submodule(domain: str, name: str):
    full = f"{domain}.{name}"
    if importlib.util.find_spec(full) is None:
        return None
    return importlib.import_module(full)


def import_models() -> None:
    """Import every domain's models so the metadata is complete."""
    for domain in DOMAINS:
        _submodule(domain, "models")
    importlib.import_module("portal.scheduler")  # its lock table


def create_app(config: dict | None = None) -> Flask:
    instance_path = Path(os.environ.get("MIMAMORI_INSTANCE", Path.cwd() / "instance")).resolve()
    app = Flask(__name__, instance_path=str(instance_path), instance_relative_config=False)
    app.config.update(load_config(instance_path))
    if config:
        app.config.update(config)
    if app.config.get("PROXY_FIX_HOPS"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["PROXY_FIX_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from portal import logsafe

    logsafe.install()  # no tokens or personal data in request log lines

    import_models()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    _init_login(app)
    _init_request_hooks(app)  # before CSRF, so a denied role gets 403 first
    csrf.init_app(app)
    limiter.init_app(app)
    from portal.i18n import select_locale, select_timezone

    babel.init_app(
        app,
        locale_selector=select_locale,
        timezone_selector=select_timezone,
        default_translation_directories=str(Path(__file__).parent / "translations"),
    )
    _init_errors(app)
    _init_templates(app)

    from portal import cli

    cli.register(app)
    for domain in DOMAINS:
        views = _submodule(domain, "views")
        if views is not None and hasattr(views, "bp"):
            app.register_blueprint(views.bp)
        cli = _submodule(domain, "cli")
        if cli is not None and hasattr(cli, "register"):
            cli.register(app)
        pkg = importlib.import_module(domain)
        if hasattr(pkg, "init_app"):
            pkg.init_app(app)
    return app


def _init_login(app: Flask) -> None:
    from portal.auth.principal import Anonymous
    from portal.auth.service import load_principal

    login_manager.init_app(app)
    login_manager.anonymous_user = Anonymous
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def _load(user_id: str):
        return load_principal(db.session, user_id)


def _init_request_hooks(app: Flask) -> None:
    from portal.auth.access import check_route

    @app.before_request
    def _request_id():
        g.request_id = uuid.uuid4().hex

    from portal import bodylimit

    bodylimit.install(app)  # before anything reads a body (CSRF, forms)

    @app.before_request
    def _idle_timeout():
        if not current_user.is_authenticated:
            return None
        now = datetime.now().timestamp()
        limit = app.config[
            "STAFF_IDLE_TIMEOUT" if current_user.is_staff
            else "STUDENT_IDLE_TIMEOUT" if current_user.kind == "student"
            else "FAMILY_IDLE_TIMEOUT"
        ]
        last = session.get("last_seen")
        if last is not None and now - last > limit.total_seconds():
            logout_user()
            session.clear()
            session["notice"] = "idle"
            return redirect(url_for("auth.sign_in"))
        session["last_seen"] = now
        return None

    @app.before_request
    def _default_deny():
        if request.endpoint is None or request.endpoint == "static" or request.endpoint.endswith(".static"):
            return None
        view = app.view_functions.get(request.endpoint)
        verdict = check_route(view, current_user)
        if verdict == "ok":
            return None
        if verdict == "login":
            return login_manager.unauthorized()
        return render_template("errors/403.html"), 403

    @app.after_request
    def _security_headers(resp):
        resp.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
            "form-action 'self'; frame-ancestors 'none'"
        )
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if app.config["SESSION_COOKIE_SECURE"]:
            resp.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if current_user.is_authenticated:
            resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Request-ID"] = g.get("request_id", "")
        return resp

    @app.teardown_request
    def _rollback_on_error(exc):
        if exc is not None:
            db.session.rollback()


def _init_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(e):
        return render_template("errors/csrf.html"), 400

    @app.errorhandler(400)
    def _bad(e):
        return render_template("errors/400.html"), 400

    @app.errorhandler(403)
    def _forbidden(e):
        return render_template("errors/403.html"), 403

    @app.errorhandler(404)
    def _not_found(e):
        return render_template("errors/404.html"), 404

    @app.errorhandler(413)
    def _too_large(e):
        from portal.bodylimit import UPLOAD, declared_limit

        view = app.view_functions.get(request.endpoint) if request.endpoint else None
        upload = declared_limit(view) == UPLOAD
        limit = request.max_content_length or app.config["MAX_CONTENT_LENGTH"]
        return render_template("errors/413.html", upload=upload, limit_kb=max(1, limit // 1024)), 413

    @app.errorhandler(429)
    def _too_many(e):
        return render_template("errors/429.html"), 429

    @app.errorhandler(500)
    def _error(e):
        db.session.rollback()
        return render_template("errors/500.html"), 500

    from sqlalchemy.exc import OperationalError

    def _page_without_database(template: str, status: int):
        """An error page that needs no database: if the user could not be loaded, show it as to a visitor."""
        try:
            db.session.rollback()
        except Exception:  # noqa: S110 (the connection is gone; the pool replaces it)
            pass
        db.session.remove()
        if "_login_user" not in g:
            g._login_user = login_manager.anonymous_user()
        resp = app.make_response((render_template(template), status))
        resp.headers["Retry-After"] = "30"
        return resp

    @app.errorhandler(OperationalError)
    def _db_down(e):
        log.error("database unavailable: %s", type(e.orig).__name__ if e.orig else "error")
        return _page_without_database("errors/503.html", 503)

    import errno

    @app.errorhandler(OSError)
    def _disk_full(e):
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise e  # any other OSError is a 500, logged as usual
        log.error("disk full while handling a request (%s)", request.endpoint)
        return _page_without_database("errors/507.html", 507)


def _init_templates(app: Flask) -> None:
    from portal import nav
    from portal.i18n import LANGUAGE_NAMES, local_date, local_datetime, select_locale
    from portal.people.labels import role_label

    app.jinja_env.filters["local_datetime"] = local_datetime
    app.jinja_env.filters["local_date"] = local_date

    @app.context_processor
    def _globals():
        return {
            "nav_entries": nav.entries_for(current_user),
            "current_locale": select_locale(),
            "language_names": LANGUAGE_NAMES,
            "role_label": role_label,
        }
