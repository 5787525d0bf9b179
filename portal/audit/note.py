"""C2SP signed notes and transparency-log checkpoints, with Ed25519 keys.

A checkpoint (https://c2sp.org/tlog-checkpoint) is the note text::

    <origin>
    <tree size, decimal>
    <root hash, base64>

followed by a blank line and one signature line per signer
(https://c2sp.org/signed-note)::

    — <key name> <base64(key id (4 bytes) || Ed25519 signature (64 bytes))>

The signature is over the note text (every line up to the blank line, each
ending in a newline). The key id is the first 4 bytes of
SHA-256(key name || 0x0A || 0x01 || public key); a verifier key is written
``<name>+<key id, 8 hex digits>+<base64(0x01 || public key)>``. Nothing here
needs the application: a steward holding only the verifier key checks a
checkpoint with :func:`open_checkpoint`.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = b"\x01"
DASH = "\u2014"  # the em dash that starts a signature line


class NoteError(ValueError):
    """A note or key that cannot be read, or a signature that does not verify."""


def _raw_public(pub: Ed25519PublicKey) -> bytes:
    return pub.public_bytes(Encoding.Raw, PublicFormat.Raw)


def check_key_name(name: str) -> str:
    if not name or any(c.isspace() for c in name) or "+" in name:
        raise NoteError("a key name is non-empty, without spaces or '+'")
    return name


def key_id(name: str, pub: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ALG_ED25519 + _raw_public(pub)).digest()[:4]


def verifier_key(name: str, pub: Ed25519PublicKey) -> str:
    """The verifier key in signed-note form: ``name+hexid+base64(0x01||pubkey)``."""
    check_key_name(name)
    return f"{name}+{key_id(name, pub).hex()}+{base64.b64encode(ALG_ED25519 + _raw_public(pub)).decode()}"


@dataclass(frozen=True)
class Verifier:
    name: str
    id: bytes
    public_key: Ed25519PublicKey


def parse_verifier_key(vkey: str) -> Verifier:
    parts = vkey.strip().split("+", 2)  # the base64 may itself hold a "+"
    if len(parts) != 3:
        raise NoteError("a verifier key looks like name+keyid+base64")
    name, hexid, b64 = parts
    check_key_name(name)
    try:
        raw = base64.b64decode(b64, validate=True)
        kid = bytes.fromhex(hexid)
    except ValueError as exc:
        raise NoteError("the verifier key is not valid base64 and hex") from exc
    if len(raw) != 33 or raw[:1] != ALG_ED25519 or len(kid) != 4:
        raise NoteError("only Ed25519 verifier keys are supported")
    pub = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_id(name, pub) != kid:
        raise NoteError("the verifier key's id does not match its name and key")
    return Verifier(name, kid, pub)


def sign(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """The signed note: ``text`` (which ends in a newline), a blank line, one signature line."""
    if not text.endswith("\n") or "\n\n" in text:
        raise NoteError("a note's text ends in a newline and has no blank line")
    check_key_name(name)
    sig = private_key.sign(text.encode("utf-8"))
    blob = key_id(name, private_key.public_key()) + sig
    return f"{text}\n{DASH} {name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    signed_by: str  # the verifier key's name
    key_id: bytes
    text: str  # the signed note as given


def open_note(note: str, verifiers: list[Verifier]) -> tuple[str, Verifier]:
    """The note's text if one of its signatures verifies with one of ``verifiers``."""
    text, sep, sigs = note.partition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise NoteError("not a signed note (no blank line before the signatures)")
    text += "\n"
    for line in sigs[:-1].split("\n"):
        prefix = DASH + " "
        if not line.startswith(prefix):
            raise NoteError("a signature line starts with an em dash")
        try:
            name, b64 = line[len(prefix):].split(" ")
            blob = base64.b64decode(b64, validate=True)
        except ValueError as exc:
            raise NoteError("a signature line is '— name base64'") from exc
        if len(blob) != 4 + 64:
            continue  # another algorithm, or not ours
        for v in verifiers:
            if v.name == name and v.id == blob[:4]:
                try:
                    v.public_key.verify(blob[4:], text.encode("utf-8"))
                except InvalidSignature as exc:
                    raise NoteError(f"the signature of {name} does not verify: the note was altered") from exc
                return text, v
    raise NoteError("no signature by a known key")


def checkpoint_text(origin: str, size: int, root_hash: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root_hash).decode()}\n"


def open_checkpoint(note: str, verifiers: list[Verifier] | str, origin: str | None = None) -> Checkpoint:
    """A checkpoint whose signature verifies; NoteError otherwise. ``verifiers``: keys or one verifier key string."""
    if isinstance(verifiers, str):
        verifiers = [parse_verifier_key(verifiers)]
    text, v = open_note(note, verifiers)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("a checkpoint has an origin, a size and a root hash")
    if origin is not None and lines[0] != origin:
        raise NoteError(f"the checkpoint is of another log ({lines[0]!r})")
    if not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
        raise NoteError("the tree size is a decimal number")
    try:
        root_hash = base64.b64decode(lines[2], validate=True)
    except ValueError as exc:
        raise NoteError("the root hash is base64") from exc
    if len(root_hash) != 32:
        raise NoteError("the root hash is 32 bytes")
    return Checkpoint(lines[0], int(lines[1]), root_hash, v.name, v.id, note)
