"""Configuration from the environment.

Every setting a deployment changes comes from an environment variable; the
defaults suit `make run` (development on SQLite). Outside development a
missing SECRET_KEY is an error, never a silent default.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path


class ConfigError(RuntimeError):
    pass


def _instance_secret(instance_path: Path, name: str, make) -> str:
    """A development secret generated once into instance/ and reused."""
    instance_path.mkdir(parents=True, exist_ok=True)
    path = instance_path / name
    if path.exists():
        return path.read_text().strip()
    # Several processes may start at once (gunicorn workers): the first to
    # link its file into place wins, the others read that one.
    value = make()
    tmp = instance_path / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    try:
        os.link(tmp, path)
    except FileExistsError:
        value = path.read_text().strip()
    finally:
        tmp.unlink()
    return value


def load_config(instance_path: Path, env: dict[str, str] | None = None) -> dict:
    env = dict(os.environ if env is None else env)
    mode = env.get("MIMAMORI_ENV", "development")
    if mode not in {"development", "production", "testing"}:
        raise ConfigError(f"MIMAMORI_ENV must be development, production or testing, not {mode!r}")
    dev = mode == "development"

    secret_key = env.get("SECRET_KEY")
    if not secret_key:
        if mode == "production":
            raise ConfigError("SECRET_KEY is required outside development")
        secret_key = _instance_secret(instance_path, "secret_key", lambda: secrets.token_hex(32))

    enc_key = env.get("MIMAMORI_ENCRYPTION_KEY")
    if not enc_key:
        if mode == "production":
            raise ConfigError("MIMAMORI_ENCRYPTION_KEY is required outside development")
        from cryptography.fernet import Fernet

        enc_key = _instance_secret(
            instance_path, "encryption_key", lambda: Fernet.generate_key().decode()
        )

    # Backups are sealed with a key of their own: neither the database's nor
    # MIMAMORI_ENCRYPTION_KEY, so a copied backup is useless without it.
    from portal.maintenance.sealed import generate_key, parse_keys

    backup_key = env.get("MIMAMORI_BACKUP_KEY")
    if not backup_key:
        if mode == "production":
            raise ConfigError("MIMAMORI_BACKUP_KEY is required outside development "
                              "(make one with: flask --app portal crypto backup-key)")
        backup_key = _instance_secret(instance_path, "backup_key", generate_key)
    try:
        backup_keys = parse_keys(backup_key)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if not backup_keys:
        raise ConfigError("MIMAMORI_BACKUP_KEY holds no key")
    enc_parts = {k.strip() for k in enc_key.split(",") if k.strip()}
    if any(k.strip() in enc_parts for k in backup_key.split(",")):
        raise ConfigError("MIMAMORI_BACKUP_KEY must not reuse a key of MIMAMORI_ENCRYPTION_KEY")
    # The audit log's keys (portal.audit.keys): never in the database.
    audit_key = env.get("MIMAMORI_AUDIT_KEY")
    audit_signing_key = env.get("MIMAMORI_AUDIT_SIGNING_KEY")
    if mode == "production" and not (audit_key and audit_signing_key):
        raise ConfigError("MIMAMORI_AUDIT_KEY and MIMAMORI_AUDIT_SIGNING_KEY are required outside development")
    if not audit_key or not audit_signing_key:
        from portal.audit.keys import new_hmac_key, new_signing_key

        audit_key = audit_key or _instance_secret(instance_path, "audit_key", new_hmac_key)
        audit_signing_key = audit_signing_key or _instance_secret(instance_path, "audit_signing_key", new_signing_key)
    sequencing = env.get("MIMAMORI_AUDIT_SEQUENCING", "deferred")
    if sequencing not in {"deferred", "inline"}:
        raise ConfigError(f"MIMAMORI_AUDIT_SEQUENCING must be deferred or inline, not {sequencing!r}")

    database_url = env.get("DATABASE_URL") or f"sqlite:///{instance_path / 'mimamori.sqlite3'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]

    secure_cookies = env.get("MIMAMORI_SECURE_COOKIES", "0" if mode != "production" else "1") == "1"
    redis_url = env.get("REDIS_URL") or None

    return {
        "MIMAMORI_ENV": mode,
        "DEBUG": False,
        "TESTING": mode == "testing",
        "SECRET_KEY": secret_key,
        "MIMAMORI_ENCRYPTION_KEY": enc_key,
        "MIMAMORI_BACKUP_KEY": backup_key,
        "MIMAMORI_AUDIT_KEY": audit_key,
        "MIMAMORI_AUDIT_SIGNING_KEY": audit_signing_key,
        # Signed checkpoints of the audit log go here: point it at another volume.
        "MIMAMORI_AUDIT_CHECKPOINT_DIR": env.get("MIMAMORI_AUDIT_CHECKPOINT_DIR") or str(instance_path / "audit-checkpoints"),
        "MIMAMORI_AUDIT_ORIGIN": env.get("MIMAMORI_AUDIT_ORIGIN") or None,
        # deferred: rows are written unchained and chained after commit (no lock
        # in the request); inline: chained in the request under the chain lock (the old way).
        "MIMAMORI_AUDIT_SEQUENCING": sequencing,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SQLALCHEMY_RECORD_QUERIES": False,
        # Sessions: signed cookies; staff idle out sooner than families.
        "SESSION_COOKIE_NAME": "mimamori_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_SECURE": secure_cookies,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=12),
        "STAFF_IDLE_TIMEOUT": timedelta(minutes=int(env.get("STAFF_IDLE_MINUTES", "15"))),
        "FAMILY_IDLE_TIMEOUT": timedelta(minutes=int(env.get("FAMILY_IDLE_MINUTES", "60"))),
        # Students sign in on shared school tablets: the next child must not find them signed in.
        "STUDENT_IDLE_TIMEOUT": timedelta(minutes=int(env.get("STUDENT_IDLE_MINUTES", "10"))),
        # File uploads (routes marked @accepts_files); every other route takes
        # at most MAX_FORM_BYTES (portal/bodylimit.py).
        "MAX_CONTENT_LENGTH": int(env.get("MAX_UPLOAD_MB", "250")) * 1024 * 1024,
        "MAX_FORM_BYTES": 64 * 1024,
        "WTF_CSRF_TIME_LIMIT": 3600 * 8,
        # Sign-in protection
        # A delay after failures, never a lockout (auth.service): at most this many seconds.
        "LOGIN_MAX_DELAY_SECONDS": 30,
        "LOGIN_RATE_LIMIT": env.get("LOGIN_RATE_LIMIT", "10 per minute"),
        # Failed attempts per address over all sign-in forms together.
        "LOGIN_FAILURE_RATE_LIMIT": env.get("LOGIN_FAILURE_RATE_LIMIT", "100 per hour"),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        # Behind a reverse proxy, how many proxies to trust for X-Forwarded-*
        # (else every family shares the proxy's address for rate limits).
        "PROXY_FIX_HOPS": int(env.get("MIMAMORI_PROXY_HOPS", "0")),
        "RATELIMIT_HEADERS_ENABLED": False,
        "REDIS_URL": redis_url,
        # Languages
        "BABEL_DEFAULT_LOCALE": "ja",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Tokyo",
        "LANGUAGES": ["ja", "en"],
        # Mail: "smtp" sends through MAIL_SERVER; "file" writes to instance/outbox
        # (development); "memory" keeps messages for tests.
        "MAIL_BACKEND": env.get("MAIL_BACKEND", "file" if dev else ("memory" if mode == "testing" else "smtp")),
        "MAIL_SERVER": env.get("MAIL_SERVER", "localhost"),
        "MAIL_PORT": int(env.get("MAIL_PORT", "25")),
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        "MAIL_USE_TLS": env.get("MAIL_USE_TLS", "0") == "1",
        "MAIL_FROM": env.get("MAIL_FROM", "mimamori@example.invalid"),
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000"),
        "ENROLMENT_CODE_DAYS": int(env.get("ENROLMENT_CODE_DAYS", "60")),
        "SCHEDULER_ENABLED": env.get("SCHEDULER_ENABLED", "0") == "1",
    }
