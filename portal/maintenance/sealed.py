"""Sealed backups: the backup zip, encrypted in authenticated chunks.

A backup holds every child's and guardian's name, address and birth date
and the password hashes, and backups are what gets copied to other storage.
So the zip is never written in clear: it is streamed through
:class:`SealedWriter` into a file of this layout::

    header   MAGIC (8) | version (1) | algorithm (1) | chunk size (4, big-endian)
             | key id (8) | salt (32)                                 = 54 bytes
    chunks   AES-256-GCM(chunk i) | tag (16), i = 0 .. n-1

- The key comes from ``MIMAMORI_BACKUP_KEY`` (comma-separated, base64 of 32
  random bytes each; the first encrypts, every one decrypts, so a key can
  be rotated while old backups stay readable). It is neither the database's
  nor ``MIMAMORI_ENCRYPTION_KEY``.
- Each file gets its own AES-256 key, HKDF-SHA256(backup key, salt), the
  salt random per file; so the chunk's nonce can be its index (96 bits)
  without ever repeating under one key.
- The associated data of chunk i is the header, i (8 bytes) and a final
  flag (1 for the last chunk, else 0): a changed header, a chunk moved,
  dropped, repeated or cut off, or a file cut at a chunk boundary, fails
  authentication. Every chunk but the last holds exactly ``chunk size``
  bytes; the last holds 1 to ``chunk size`` (0 only for an empty stream).
- The key id is HMAC-SHA256(key, "mimamori backup key id")[:8]: it names
  which key of the list to use without revealing the key.

:class:`SealedReader` is a seekable, read-only file over the plaintext,
decrypting one chunk at a time (``zipfile`` reads the zip through it), so a
backup of any size is neither held in memory nor written out in clear.
:meth:`SealedReader.verify` authenticates every chunk before a restore
writes anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"MMRIBAK\x00"
VERSION = 1
ALG_AES256GCM = 1
CHUNK_SIZE = 1 << 18  # 256 KiB of plaintext per chunk
TAG = 16
_HEADER = struct.Struct(">8sBBI8s32s")
HEADER_SIZE = _HEADER.size
KEY_ENV = "MIMAMORI_BACKUP_KEY"


class SealError(Exception):
    """A sealed backup cannot be opened: ``str()`` says why, for the operator."""


def generate_key() -> str:
    """A new backup key, as ``MIMAMORI_BACKUP_KEY`` takes it."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def parse_keys(value: str | None) -> list[bytes]:
    """The keys of a ``MIMAMORI_BACKUP_KEY`` value, first (encrypting) first.

    Raises :class:`ValueError` with a message naming the variable for a key
    that is not base64 of 32 bytes."""
    keys = []
    for i, part in enumerate((value or "").split(",")):
        part = part.strip()
        if not part:
            continue
        try:
            raw = base64.urlsafe_b64decode(part.encode("ascii") + b"=" * (-len(part) % 4))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(f"{KEY_ENV}: key {i + 1} is not 32 bytes in base64 "
                             "(make one with: flask --app portal crypto backup-key)")
        keys.append(raw)
    return keys


def key_id(key: bytes) -> bytes:
    return hmac.new(key, b"mimamori backup key id", hashlib.sha256).digest()[:8]


def _file_key(key: bytes, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"mimamori backup v1 aes-256-gcm")
    return AESGCM(hkdf.derive(key))


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


def _aad(header: bytes, index: int, final: bool) -> bytes:
    return header + index.to_bytes(8, "big") + (b"\x01" if final else b"\x00")


def is_sealed(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


class SealedWriter(io.RawIOBase):
    """A write-only stream that seals what is written into ``fp``.

    Not seekable (``zipfile`` then writes data descriptors); :meth:`close`
    writes the final chunk and must be called for a readable file."""

    def __init__(self, fp, key: bytes, *, chunk_size: int = CHUNK_SIZE):
        super().__init__()
        self._fp = fp
        self._chunk = chunk_size
        salt = os.urandom(32)
        self._header = _HEADER.pack(MAGIC, VERSION, ALG_AES256GCM, chunk_size, key_id(key), salt)
        self._aead = _file_key(key, salt)
        self._buf = bytearray()
        self._index = 0
        self._pos = 0
        fp.write(self._header)

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def write(self, data) -> int:
        if self.closed:
            raise ValueError("write to a closed sealed backup")
        self._buf += data
        self._pos += len(data)
        # Keep at least one byte back: the last chunk is only known at close.
        while len(self._buf) > self._chunk:
            self._seal(bytes(self._buf[: self._chunk]), final=False)
            del self._buf[: self._chunk]
        return len(data)

    def _seal(self, plain: bytes, *, final: bool) -> None:
        self._fp.write(self._aead.encrypt(_nonce(self._index), plain, _aad(self._header, self._index, final)))
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._seal(bytes(self._buf), final=True)
            self._buf.clear()
            self._fp.flush()
        super().close()


class SealedReader(io.RawIOBase):
    """A seekable read-only file over a sealed backup's plaintext.

    Opening checks the header, picks the key by its id and authenticates the
    last chunk (so a cut-off file is refused at once); each read decrypts
    the chunks it needs. Any failure is a :class:`SealError`."""

    def __init__(self, path: str | os.PathLike, keys: list[bytes]):
        super().__init__()
        if not keys:
            raise SealError(f"no backup key is configured ({KEY_ENV}): a backup cannot be opened without "
                            "the key it was made with")
        self._f = open(path, "rb")  # noqa: SIM115 (closed by close())
        try:
            self._open(keys)
        except BaseException:
            self._f.close()
            raise

    def _open(self, keys: list[bytes]) -> None:
        header = self._f.read(HEADER_SIZE)
        if len(header) < HEADER_SIZE or not header.startswith(MAGIC):
            raise SealError("this file is not an encrypted Mimamori backup")
        _magic, version, alg, chunk, kid, salt = _HEADER.unpack(header)
        if version != VERSION or alg != ALG_AES256GCM:
            raise SealError(f"encrypted backup version {version}/{alg} is not supported by this code")
        if not 1 <= chunk <= 1 << 26:
            raise SealError("the backup has been altered (its header is not valid); nothing was restored")
        key = next((k for k in keys if hmac.compare_digest(key_id(k), kid)), None)
        if key is None:
            raise SealError(f"this backup was encrypted with a key that is not in {KEY_ENV} "
                            f"(key id {kid.hex()}): give the key it was made with; nothing was restored")
        self._header, self._chunk, self._aead = header, chunk, _file_key(key, salt)
        size = os.fstat(self._f.fileno()).st_size - HEADER_SIZE
        stride = chunk + TAG
        self._n = max(1, -(-size // stride))
        last = size - (self._n - 1) * stride
        if size <= 0 or last < TAG:
            raise SealError("the backup is truncated or has been altered; nothing was restored")
        self._size = (self._n - 1) * chunk + (last - TAG)
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None
        self._plain(self._n - 1)  # authenticates the end: a cut file fails here

    def _plain(self, index: int) -> bytes:
        if self._cached and self._cached[0] == index:
            return self._cached[1]
        stride = self._chunk + TAG
        self._f.seek(HEADER_SIZE + index * stride)
        sealed = self._f.read(stride)
        final = index == self._n - 1
        try:
            plain = self._aead.decrypt(_nonce(index), sealed, _aad(self._header, index, final))
        except InvalidTag:
            raise SealError("the backup is truncated or has been altered (chunk "
                            f"{index + 1} of {self._n} fails authentication); nothing was restored") from None
        if not final and len(plain) != self._chunk:
            raise SealError("the backup has been altered; nothing was restored")
        self._cached = (index, plain)
        return plain

    def verify(self) -> None:
        """Authenticate every chunk (the whole file), reading it once."""
        for i in range(self._n):
            self._plain(i)

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        pos = base + offset
        if pos < 0:
            raise OSError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, b) -> int:
        view = memoryview(b).cast("B")
        want = min(len(view), max(0, self._size - self._pos))
        done = 0
        while done < want:
            index, offset = divmod(self._pos, self._chunk)
            plain = self._plain(index)
            n = min(want - done, len(plain) - offset)
            view[done : done + n] = plain[offset : offset + n]
            done += n
            self._pos += n
        return done

    def close(self) -> None:
        if not self.closed:
            self._f.close()
            self._cached = None
        super().close()
