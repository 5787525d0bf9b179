"""Password and PIN hashing with argon2 (argon2-cffi)."""

from __future__ import annotations

import os

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Tests use cheap parameters so the suite stays fast; every other mode uses
# argon2-cffi's recommended defaults (RFC 9106 low-memory profile).
if os.environ.get("MIMAMORI_ENV") == "testing":
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
else:
    _hasher = PasswordHasher()
# A hash computed once so that a sign-in for an unknown user costs the same
# time as one for a known user (no account enumeration by timing).
_DUMMY = _hasher.hash("mimamori-dummy-password")

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
