"""Backup and restore: a portable, versioned copy of the whole database.

A backup is a zip file:

- ``manifest.json``: the format and its version, the Alembic schema
  revision, the source dialect, and per table (in foreign-key order) its
  columns, row count and the SHA-256 of its data file;
- ``tables/NNN-<table>.jsonl``: one JSON array per row, values in the
  manifest's column order, rows in primary-key order. Dates and times are
  ISO 8601 (timestamps in UTC with their offset), JSON columns stay JSON.

The zip is never written in clear: it is sealed with ``MIMAMORI_BACKUP_KEY``
(AES-256-GCM in authenticated chunks, :mod:`portal.maintenance.sealed`), a
key apart from the database and from ``MIMAMORI_ENCRYPTION_KEY``. A restore
without that key, with another key, or of a file that was altered, cut off
or reordered is refused before anything is written.

The same file restores into SQLite or PostgreSQL. Encrypted columns
(:class:`portal.crypto.EncryptedText`) are copied as their ciphertext: a
backup never decrypts them, and it needs the same
``MIMAMORI_ENCRYPTION_KEY`` to be useful. Runtime state that must not come
back (the scheduler's locks) is left out.

A backup reads one consistent snapshot (PostgreSQL: a REPEATABLE READ
transaction; SQLite: one read transaction) and is written to a temporary
file renamed into place, so a failure (a full disk) leaves no partial file.

:func:`restore` runs in the caller's transaction: it refuses a backup of
another schema revision, a damaged file or a non-empty database (unless
``force``, which replaces everything), inserts every table, resets
PostgreSQL's sequences and compares every table's count and hash with the
manifest before the caller commits.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import secrets
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from portal.crypto import EncryptedText
from portal.maintenance import sealed
from portal.orm import Base, utcnow

log = logging.getLogger(__name__)

FORMAT = "mimamori-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: Runtime state that a restored deployment must not inherit.
RUNTIME_TABLES = frozenset({"scheduler_lock"})
INSERT_CHUNK = 1000
MIGRATIONS = Path(__file__).resolve().parent.parent.parent / "migrations"


class BackupError(Exception):
    """A backup or restore refused or failed; ``str()`` says why, for the operator."""


@dataclass(frozen=True)
class TableSummary:
    name: str
    rows: int
    sha256: str


@dataclass
class Result:
    path: Path
    revision: str
    tables: list[TableSummary] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


# -- the schema ---------------------------------------------------------------------


def backed_up_tables() -> list[sa.Table]:
    """Every table of the models, parents before children."""
    return [t for t in Base.metadata.sorted_tables if t.name not in RUNTIME_TABLES]


def code_revision() -> str:
    """The head revision of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def database_revision(conn: Connection) -> str:
    """The schema revision of the database: ``alembic_version`` when it was
    migrated; the code's head when the schema was built from the models."""
    if sa.inspect(conn).has_table("alembic_version"):
        rev = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        if rev:
            return rev
    return code_revision()


def _raw_type(col: sa.Column):
    """The type a backup reads and writes a column with: ciphertext as text,
    enums as their stored label, everything else as the model declares it."""
    if isinstance(col.type, EncryptedText):
        return sa.Text()
    if isinstance(col.type, sa.Enum):
        return sa.String()
    return col.type


def raw_table(table: sa.Table) -> sa.TableClause:
    return sa.table(table.name, *[sa.column(c.name, _raw_type(c)) for c in table.columns])


def _encode(value):
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        raise TypeError("binary columns are not supported by the backup format")
    return value


def _decoder(col: sa.Column):
    t = col.type
    kind = t.impl if isinstance(t, sa.TypeDecorator) and not isinstance(t, EncryptedText) else t
    if isinstance(kind, sa.DateTime):
        return datetime.fromisoformat
    if isinstance(kind, sa.Date):
        return date.fromisoformat
    if isinstance(kind, sa.Time):
        return time.fromisoformat
    if isinstance(kind, sa.Numeric) and getattr(kind, "asdecimal", False):
        return Decimal
    return None


def _line(values) -> bytes:
    return (json.dumps([_encode(v) for v in values], ensure_ascii=False, sort_keys=True,
                       separators=(",", ":"), allow_nan=False) + "\n").encode("utf-8")


def table_lines(conn: Connection, table: sa.Table) -> Iterator[bytes]:
    """The table's rows as backup lines, in primary-key order."""
    raw = raw_table(table)
    order = [raw.c[c.name] for c in (table.primary_key.columns or table.columns)]
    result = conn.execute(sa.select(*raw.c).order_by(*order).execution_options(yield_per=2000))
    for row in result:
        yield _line(row)


def table_digest(conn: Connection, table: sa.Table) -> TableSummary:
    h, n = hashlib.sha256(), 0
    for line in table_lines(conn, table):
        h.update(line)
        n += 1
    return TableSummary(table.name, n, h.hexdigest())


# -- backup --------------------------------------------------------------------------


def _create_file(path: Path):
    """A new file only the owner can read (a backup holds personal data)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def _snapshot(engine: Engine) -> Connection:
    if engine.dialect.name == "postgresql":
        conn = engine.connect().execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    else:
        conn = engine.connect()
        conn.exec_driver_sql("BEGIN")  # one read transaction: a snapshot across tables
    return conn


def _disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def backup(engine: Engine, out: str | os.PathLike, *, keys: str) -> Result:
    """Write a backup of the whole database to ``out`` (replaced if it exists),
    sealed with the first key of ``keys`` (a ``MIMAMORI_BACKUP_KEY`` value)."""
    out = Path(out)
    try:
        key = sealed.parse_keys(keys)[:1]
    except ValueError as exc:
        raise BackupError(f"{exc}; no backup file was written") from exc
    if not key:
        raise BackupError(f"no backup key is configured ({sealed.KEY_ENV}): a backup is never written "
                          "unencrypted; no backup file was written")
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    tables = backed_up_tables()
    try:
        with _snapshot(engine) as conn:
            result = Result(out, database_revision(conn))
            with (_create_file(tmp) as raw, sealed.SealedWriter(raw, key[0], chunk_size=sealed.CHUNK_SIZE) as sealed_out,
                  zipfile.ZipFile(sealed_out, "w", compression=zipfile.ZIP_DEFLATED) as zf):
                entries = []
                for i, table in enumerate(tables):
                    name = f"tables/{i:03d}-{table.name}.jsonl"
                    h, n = hashlib.sha256(), 0
                    with zf.open(name, "w", force_zip64=True) as f:
                        for line in table_lines(conn, table):
                            f.write(line)
                            h.update(line)
                            n += 1
                    summary = TableSummary(table.name, n, h.hexdigest())
                    result.tables.append(summary)
                    entries.append({"name": table.name, "file": name, "columns": [c.name for c in table.columns],
                                    "rows": n, "sha256": summary.sha256})
                manifest = {
                    "format": FORMAT, "version": FORMAT_VERSION, "revision": result.revision,
                    "dialect": engine.dialect.name, "created_at": utcnow().isoformat(),
                    "excluded": sorted(RUNTIME_TABLES), "tables": entries,
                }
                zf.writestr(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
            conn.rollback()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if _disk_full(exc):
            raise BackupError("the disk is full (no space left on device); no backup file was written") from exc
        raise BackupError(f"the backup could not be written: {exc.strerror or exc}; no backup file was written") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("backup written: %d tables, %d rows", len(result.tables), result.rows)
    return result


# -- restore -------------------------------------------------------------------------


def read_manifest(zf: zipfile.ZipFile) -> dict:
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except (KeyError, ValueError) as exc:
        raise BackupError("this file is not a Mimamori backup (no readable manifest)") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("this file is not a Mimamori backup")
    if manifest.get("version") != FORMAT_VERSION:
        raise BackupError(f"backup format version {manifest.get('version')} is not supported "
                          f"(this code reads version {FORMAT_VERSION})")
    return manifest


def _check_schema(manifest: dict, tables: list[sa.Table], revision: str) -> None:
    if manifest.get("revision") != revision:
        raise BackupError(
            f"the backup is of schema revision {manifest.get('revision')}, this database is at {revision}: "
            f"restore into a database migrated to {manifest.get('revision')} (flask db upgrade "
            f"{manifest.get('revision')}), then upgrade it"
        )
    ours = {t.name: [c.name for c in t.columns] for t in tables}
    theirs = {e["name"]: e["columns"] for e in manifest.get("tables", [])}
    if ours != theirs:
        differ = sorted(n for n in set(ours) | set(theirs) if ours.get(n) != theirs.get(n))
        raise BackupError("the backup's tables do not match this schema: " + ", ".join(differ[:10]))


def _check_files(zf: zipfile.ZipFile, manifest: dict) -> None:
    """Every data file is there and has the hash and row count the manifest says."""
    for entry in manifest["tables"]:
        h, n = hashlib.sha256(), 0
        try:
            with zf.open(entry["file"]) as f:
                for line in f:
                    h.update(line)
                    n += 1
        except (KeyError, zipfile.BadZipFile, OSError) as exc:
            raise BackupError(f"the backup is damaged: the data of table {entry['name']} cannot be read") from exc
        if h.hexdigest() != entry["sha256"] or n != entry["rows"]:
            raise BackupError(f"the backup is damaged: the data of table {entry['name']} does not match its manifest")


def _rows(zf: zipfile.ZipFile, entry: dict, table: sa.Table) -> Iterator[dict]:
    cols = list(table.columns)
    decoders = [_decoder(c) for c in cols]
    with zf.open(entry["file"]) as f:
        for line in f:
            values = json.loads(line)
            yield {c.name: (dec(v) if dec and v is not None else v) for c, dec, v in zip(cols, decoders, values, strict=True)}


def non_empty_tables(session: Session) -> list[str]:
    """Tables holding data (the runtime tables, such as a running scheduler's lock, do not count)."""
    return [t.name for t in backed_up_tables()
            if session.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first() is not None]


def _reset_sequences(session: Session, tables: list[sa.Table]) -> None:
    prep = session.get_bind().dialect.identifier_preparer
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, sa.Integer):
            continue
        seq = session.execute(sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                              {"t": prep.quote(table.name), "c": pk[0].name}).scalar()
        if seq:
            top = sa.select(sa.func.max(pk[0])).scalar_subquery()
            session.execute(sa.select(sa.func.setval(seq, sa.func.coalesce(top, 0) + 1, sa.false())))


@contextmanager
def open_backup(src: str | os.PathLike, keys: str | None, *, allow_plaintext: bool = False) -> Iterator[zipfile.ZipFile]:
    """The backup's zip, decrypted as it is read, after every chunk of the file
    was authenticated with one of ``keys`` (a ``MIMAMORI_BACKUP_KEY`` value).

    A plain zip (a backup made before backups were encrypted) is opened only
    with ``allow_plaintext``."""
    src = Path(src)
    try:
        is_sealed = sealed.is_sealed(src)
    except OSError as exc:
        raise BackupError(f"the backup cannot be read: {exc.strerror or exc}") from exc
    if not is_sealed:
        if not zipfile.is_zipfile(src):
            raise BackupError("this file is not a Mimamori backup (neither an encrypted backup nor a zip file)")
        if not allow_plaintext:
            raise BackupError("this backup is not encrypted: it may have been replaced or made by an older "
                              "version; restore it only if you know where it comes from, with --allow-plaintext")
        try:
            zf = zipfile.ZipFile(src)
        except (zipfile.BadZipFile, OSError) as exc:
            raise BackupError("this file is not a Mimamori backup (not a readable zip file)") from exc
        with zf:
            yield zf
        return
    try:
        reader = sealed.SealedReader(src, sealed.parse_keys(keys))
    except (sealed.SealError, ValueError) as exc:
        raise BackupError(str(exc)) from exc
    with reader:
        try:
            reader.verify()
            zf = zipfile.ZipFile(reader)
        except sealed.SealError as exc:
            raise BackupError(str(exc)) from exc
        except (zipfile.BadZipFile, OSError) as exc:
            raise BackupError("this file is not a Mimamori backup (it decrypts, but holds no readable zip)") from exc
        with zf:
            try:
                yield zf
            except sealed.SealError as exc:  # only if the file changed while it was read
                raise BackupError(str(exc)) from exc


def restore(session: Session, src: str | os.PathLike, *, keys: str | None, force: bool = False,
            allow_plaintext: bool = False) -> Result:
    """Restore a backup into this database, in the caller's transaction (the caller commits).

    ``keys`` is the ``MIMAMORI_BACKUP_KEY`` value; the backup is refused,
    before anything is written, without the key it was sealed with or when
    any part of it fails authentication."""
    from portal.audit.service import record as audit
    from portal.auth.principal import SYSTEM

    src = Path(src)
    with open_backup(src, keys, allow_plaintext=allow_plaintext) as zf:
        is_sealed_file = sealed.is_sealed(src)
        manifest = read_manifest(zf)
        tables = backed_up_tables()
        revision = database_revision(session.connection())
        _check_schema(manifest, tables, revision)
        _check_files(zf, manifest)
        occupied = non_empty_tables(session)
        if occupied and not force:
            raise BackupError(f"the database is not empty ({len(occupied)} tables hold rows): restore into an "
                              "empty database, or give --force to replace everything in it")
        for table in reversed(Base.metadata.sorted_tables):
            if table.name in occupied:
                session.execute(table.delete())
        by_name = {t.name: t for t in tables}
        for entry in manifest["tables"]:
            table = by_name[entry["name"]]
            raw = raw_table(table)
            chunk: list[dict] = []
            for row in _rows(zf, entry, table):
                chunk.append(row)
                if len(chunk) >= INSERT_CHUNK:
                    session.execute(raw.insert(), chunk)
                    chunk = []
            if chunk:
                session.execute(raw.insert(), chunk)
        if session.get_bind().dialect.name == "postgresql":
            _reset_sequences(session, tables)
        result = Result(src, revision)
        conn = session.connection()
        for entry in manifest["tables"]:
            got = table_digest(conn, by_name[entry["name"]])
            if got.rows != entry["rows"] or got.sha256 != entry["sha256"]:
                raise BackupError(f"verification failed: table {entry['name']} differs from the backup after "
                                  "restoring; nothing was changed")
            result.tables.append(got)
    audit(session, SYSTEM, "maintenance.restore",
          detail={"tables": len(result.tables), "rows": result.rows, "revision": revision, "replaced": bool(occupied),
                  "encrypted": is_sealed_file})
    session.flush()
    log.info("backup restored: %d tables, %d rows", len(result.tables), result.rows)
    return result
