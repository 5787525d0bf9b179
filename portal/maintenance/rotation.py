"""Rotating the encryption key of the encrypted columns.

``MIMAMORI_ENCRYPTION_KEY`` holds comma-separated Fernet keys: the first
encrypts, every one decrypts (:mod:`portal.crypto`, MultiFernet). To rotate,
put a new key first, keep the old ones after it, run
``flask --app portal crypto rotate`` (every encrypted value is re-encrypted
with the first key, in one transaction), then drop the old keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.orm import Session

from portal.crypto import EncryptedText, fernet_for
from portal.orm import Base

CHUNK = 1000


class RotationError(Exception):
    """A value no configured key can read; ``str()`` names the column (never the value)."""


@dataclass
class RotationResult:
    checked: int = 0
    rotated: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rotated.values())


def encrypted_columns() -> list[tuple[sa.Table, sa.Column]]:
    return [(t, c) for t in Base.metadata.sorted_tables for c in t.columns if isinstance(c.type, EncryptedText)]


def _keys(keys: str) -> list[str]:
    return [k.strip() for k in keys.split(",") if k.strip()]


def rotate_all(session: Session, keys: str) -> RotationResult:
    """Re-encrypt, with the first of ``keys``, every encrypted value written
    with another key. Flushes; the caller commits (or rolls back on error)."""
    from portal.audit.service import record as audit
    from portal.auth.principal import SYSTEM

    primary = Fernet(_keys(keys)[0].encode())
    every = fernet_for(keys)
    result = RotationResult()
    for table, col in encrypted_columns():
        pk = list(table.primary_key.columns)
        if len(pk) != 1:
            raise RotationError(f"{table.name} has no single-column primary key")
        raw = sa.table(table.name, sa.column(pk[0].name), sa.column(col.name, sa.Text()))
        rows = session.execute(sa.select(raw.c[pk[0].name], raw.c[col.name]).where(raw.c[col.name].is_not(None))).all()
        updates = []
        for ident, token in rows:
            result.checked += 1
            try:
                primary.decrypt(token.encode("ascii"))
                continue  # already under the first key
            except InvalidToken:
                pass
            try:
                updates.append({"_id": ident, "_v": every.rotate(token.encode("ascii")).decode("ascii")})
            except InvalidToken as exc:
                raise RotationError(f"a value in {table.name}.{col.name} (id {ident}) cannot be read with any "
                                    "configured key; nothing was changed") from exc
        stmt = (sa.update(raw).where(raw.c[pk[0].name] == sa.bindparam("_id"))
                .values({col.name: sa.bindparam("_v")}))
        for start in range(0, len(updates), CHUNK):
            session.execute(stmt, updates[start:start + CHUNK])
        if updates:
            result.rotated[f"{table.name}.{col.name}"] = len(updates)
    audit(session, SYSTEM, "maintenance.key_rotation",
          detail={"checked": result.checked, "rotated": result.total, "columns": len(result.rotated)})
    session.flush()
    return result
