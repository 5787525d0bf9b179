"""Encryption at rest for rarely-needed personal data (notes, free text).

Uses cryptography's Fernet through MultiFernet, so the key can be rotated:
MIMAMORI_ENCRYPTION_KEY holds one or more comma-separated keys, the first
encrypts, all decrypt; `flask --app portal crypto rotate` re-encrypts.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app, has_app_context
from sqlalchemy import Text, TypeDecorator

_cache: dict[str, MultiFernet] = {}


def fernet_for(keys: str) -> MultiFernet:
    if keys not in _cache:
        _cache[keys] = MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])
    return _cache[keys]


def current_fernet() -> MultiFernet:
    if not has_app_context():
        raise RuntimeError("encryption needs an application context for its key")
    return fernet_for(current_app.config["MIMAMORI_ENCRYPTION_KEY"])


def encrypt(text: str) -> str:
    return current_fernet().encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return current_fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:  # wrong key or tampered value
        raise ValueError("encrypted value cannot be read with the configured key") from exc


def rotate(token: str) -> str:
    return current_fernet().rotate(token.encode("ascii")).decode("ascii")


class EncryptedText(TypeDecorator):
    """A text column stored encrypted; Python sees plain text."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return encrypt(value)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return decrypt(value)
