"""The audit log's keys, which the database never holds.

``MIMAMORI_AUDIT_KEY``: one or more comma-separated HMAC keys (at least 32
characters each, e.g. ``secrets.token_urlsafe(32)``). The first
authenticates new rows; every one verifies. Each row records the id of its
key (:func:`hmac_key_id`), so old rows stay verifiable after a rotation:
put the new key first and keep the old ones after it.

``MIMAMORI_AUDIT_SIGNING_KEY``: one or more comma-separated Ed25519 private
keys (base64 of the 32-byte seed). The first signs checkpoints; every one's
public key verifies the checkpoints it signed (each checkpoint carries its
key id). ``flask --app portal audit public-key`` prints the verifier keys
for the data stewards.

In development both are generated into instance/ (like ``SECRET_KEY``);
in production they are required, and kept away from the database and its
backups: anyone holding them and the database could rewrite the log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from flask import current_app

from portal.audit import note


class AuditKeyError(ValueError):
    pass


def new_hmac_key() -> str:
    return secrets.token_urlsafe(32)


def new_signing_key() -> str:
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def hmac_key_id(key: bytes) -> str:
    return hashlib.sha256(b"mimamori audit hmac key\n" + key).hexdigest()[:16]


@dataclass(frozen=True)
class AuditKeys:
    hmac: dict[str, bytes]  # key id -> key, the first one authenticates
    primary_hmac_id: str
    signers: tuple[Ed25519PrivateKey, ...]  # the first one signs
    name: str  # the checkpoint origin and the signing key's name

    def mac(self, key_id: str, data: bytes) -> str | None:
        key = self.hmac.get(key_id)
        return None if key is None else hmac.new(key, data, hashlib.sha256).hexdigest()

    @property
    def verifiers(self) -> list[note.Verifier]:
        out = []
        for k in self.signers:
            pub = k.public_key()
            out.append(note.Verifier(self.name, note.key_id(self.name, pub), pub))
        return out

    def verifier_keys(self) -> list[str]:
        return [note.verifier_key(self.name, k.public_key()) for k in self.signers]


def _split(value: str) -> list[str]:
    return [k.strip() for k in (value or "").split(",") if k.strip()]


@lru_cache(maxsize=8)
def parse(hmac_keys: str, signing_keys: str, name: str) -> AuditKeys:
    macs = {}
    for k in _split(hmac_keys):
        if len(k) < 32:
            raise AuditKeyError("each MIMAMORI_AUDIT_KEY is at least 32 characters")
        macs.setdefault(hmac_key_id(k.encode()), k.encode())
    if not macs:
        raise AuditKeyError("MIMAMORI_AUDIT_KEY holds no key")
    signers = []
    for k in _split(signing_keys):
        try:
            raw = base64.b64decode(k, validate=True)
            signers.append(Ed25519PrivateKey.from_private_bytes(raw))
        except ValueError as exc:
            raise AuditKeyError("each MIMAMORI_AUDIT_SIGNING_KEY is the base64 of a 32-byte Ed25519 seed") from exc
    if not signers:
        raise AuditKeyError("MIMAMORI_AUDIT_SIGNING_KEY holds no key")
    note.check_key_name(name)
    return AuditKeys(macs, next(iter(macs)), tuple(signers), name)


def default_origin(public_base_url: str) -> str:
    host = urlsplit(public_base_url).hostname or "mimamori.invalid"
    return f"{host}/mimamori-audit"


def current() -> AuditKeys:
    cfg = current_app.config
    return parse(cfg["MIMAMORI_AUDIT_KEY"], cfg["MIMAMORI_AUDIT_SIGNING_KEY"],
                 cfg.get("MIMAMORI_AUDIT_ORIGIN") or default_origin(cfg.get("PUBLIC_BASE_URL", "")))
