"""Password and PIN hashing with argon2id (argon2-cffi).

Two parameter sets, chosen with ``MIMAMORI_PASSWORD_HASH``:

* ``owasp`` (the default): m=19 MiB, t=2, p=1, the first of the equivalent
  argon2id configurations in the OWASP Password Storage Cheat Sheet. About
  30 ms of one core a hash on the development machine, so a school's morning
  of sign-ins is not spent hashing (bench/morning.py measured 210 ms a
  sign-in with the other set: three quarters of the server's CPU).
* ``rfc9106``: argon2-cffi's default, RFC 9106's low-memory profile
  (m=64 MiB, t=3, p=4), for a deployment with cores to spare.

A stored hash carries its own parameters: hashes made under the other set
still verify, and are re-hashed with the current set at the next successful
sign-in (:func:`needs_rehash`). Tests use the cheapest parameters.
"""

from __future__ import annotations

import os

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

PROFILES = {
    "owasp": dict(time_cost=2, memory_cost=19 * 1024, parallelism=1),
    "rfc9106": dict(time_cost=profiles.RFC_9106_LOW_MEMORY.time_cost,
                    memory_cost=profiles.RFC_9106_LOW_MEMORY.memory_cost,
                    parallelism=profiles.RFC_9106_LOW_MEMORY.parallelism),
}


def _make_hasher() -> PasswordHasher:
    if os.environ.get("MIMAMORI_ENV") == "testing":
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    name = os.environ.get("MIMAMORI_PASSWORD_HASH", "owasp")
    if name not in PROFILES:
        raise RuntimeError(f"MIMAMORI_PASSWORD_HASH must be one of {', '.join(PROFILES)}, not {name!r}")
    return PasswordHasher(**PROFILES[name])


_hasher = _make_hasher()
# A hash computed once so that a sign-in for an unknown user costs the same
# time as one for a known user (no account enumeration by timing).
_DUMMY = _hasher.hash("mimamori-dummy-password")

# ASVS 4.0.3 V2.1.1: at least 12 characters.
MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True if ``stored_hash`` was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return False
