"""Backup and restore: back up, wipe, restore, and every table comes back the same;
the file is sealed with MIMAMORI_BACKUP_KEY and a restore refuses it without the
key, with another key, or when it was altered, cut off or reordered.

Runs on SQLite and on PostgreSQL (``DATABASE_URL``), like every test.
"""

from __future__ import annotations

import errno
import json
import zipfile

import pytest
import sqlalchemy as sa

from portal import demo
from portal.audit.models import AuditEvent
from portal.audit.service import verify
from portal.config import ConfigError, load_config
from portal.maintenance import sealed
from portal.maintenance import service as backup_service
from portal.maintenance.service import backed_up_tables, open_backup, raw_table
from portal.people.models import Child
from tests.conftest import _empty_tables


def _snapshot(session) -> dict[str, list[tuple]]:
    """Every row of every table as stored (ciphertext as ciphertext), in key order."""
    out = {}
    for table in backed_up_tables():
        raw = raw_table(table)
        order = [raw.c[c.name] for c in (table.primary_key.columns or table.columns)]
        out[table.name] = [tuple(r) for r in session.execute(sa.select(*raw.c).order_by(*order))]
    return out


@pytest.fixture
def demo_data(app, session):
    demo.load(session, app.config["SECRET_KEY"], children_per_class=2)
    session.commit()
    return session


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def test_backup_wipe_restore_gives_back_every_table(app, session, demo_data, cli, tmp_path):
    before = _snapshot(session)
    assert sum(1 for rows in before.values() if rows) >= 30  # the demo fills most tables
    out = tmp_path / "mimamori.zip"

    res = cli.invoke(args=["backup", str(out)])
    assert res.exit_code == 0, res.output
    assert "backup written" in res.output
    with open_backup(out, app.config["MIMAMORI_BACKUP_KEY"]) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["format"] == "mimamori-backup" and manifest["version"] == 1
        assert manifest["revision"] == backup_service.code_revision()
        assert {t["name"]: t["rows"] for t in manifest["tables"]} == {k: len(v) for k, v in before.items()}
        # parents before children: every foreign key points at a table listed earlier
        position = {t["name"]: i for i, t in enumerate(manifest["tables"])}
        for table in backed_up_tables():
            for fk in table.foreign_keys:
                if fk.column.table.name != table.name:
                    assert position[fk.column.table.name] < position[table.name]

    session.remove()
    _empty_tables()
    assert all(not rows for rows in _snapshot(session).values())

    res = cli.invoke(args=["restore", str(out)])
    assert res.exit_code == 0, res.output
    assert "counts and hashes verified" in res.output
    after = _snapshot(session)
    for name, rows in before.items():
        if name == "audit_event":  # the restore itself is recorded, after the restored chain
            assert after[name][: len(rows)] == rows
            assert len(after[name]) == len(rows) + 1
        else:
            assert after[name] == rows, name
    last = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert last.action == "maintenance.restore" and last.detail["rows"] == sum(len(v) for v in before.values())
    assert verify(session).ok  # the hash chain runs through the restored rows and the new one

    # The database goes on working: new rows get fresh ids (PostgreSQL's sequences were reset).
    top = session.scalar(sa.select(sa.func.max(Child.id)))
    child = Child(student_no="NEW0001", name="新規 太郎", name_kana="シンキ タロウ", birth_date=before_date(), sex="M")
    session.add(child)
    session.commit()
    assert child.id > top


def before_date():
    from datetime import date

    return date(2018, 5, 1)


def test_encrypted_columns_stay_encrypted_in_the_backup(app, session, demo_data, cli, tmp_path):
    from portal.maintenance.rotation import encrypted_columns

    plain_values = []
    for _table, col in encrypted_columns():
        plain_values += [v for v in session.execute(sa.select(col).where(col.is_not(None)).limit(3)).scalars() if v]
    assert plain_values, "the demo stores encrypted free text"
    out = tmp_path / "b.zip"
    assert cli.invoke(args=["backup", str(out)]).exit_code == 0
    with open_backup(out, app.config["MIMAMORI_BACKUP_KEY"]) as zf:
        blob = b"".join(zf.read(n) for n in zf.namelist())
    for value in plain_values:
        if len(value) >= 6:
            assert value.encode() not in blob
    assert b"gAAAAA" in blob  # Fernet tokens, as stored
    assert (out.stat().st_mode & 0o077) == 0  # only the owner may read it


def test_restore_refuses_a_database_that_is_not_empty_unless_forced(app, session, make, cli, tmp_path):
    school = make.school(name="元の学校")
    session.commit()
    out = tmp_path / "b.zip"
    assert cli.invoke(args=["backup", str(out)]).exit_code == 0
    make.school(name="後から足した学校")
    session.commit()

    res = cli.invoke(args=["restore", str(out)])
    assert res.exit_code == 1
    assert "not empty" in res.output and "--force" in res.output
    from portal.people.models import School

    assert session.scalar(sa.select(sa.func.count(School.id))) == 2  # nothing changed

    res = cli.invoke(args=["restore", "--force", str(out)])
    assert res.exit_code == 0, res.output
    assert [s.name for s in session.scalars(sa.select(School))] == [school.name]


def _rewrite(src, dst, change, keys):
    """Someone holding the backup key rewrites the zip inside and seals it again:
    the manifest's hashes and schema checks still stand behind the encryption."""
    with open_backup(src, keys) as zin, open(dst, "wb") as raw, sealed.SealedWriter(raw, sealed.parse_keys(keys)[0]) as w:
        with zipfile.ZipFile(w, "w") as zout:
            for name in zin.namelist():
                zout.writestr(name, change(name, zin.read(name)))


def test_restore_refuses_a_backup_of_another_schema_revision(app, session, make, cli, tmp_path):
    make.school()
    session.commit()
    out, other = tmp_path / "b.zip", tmp_path / "other.zip"
    assert cli.invoke(args=["backup", str(out)]).exit_code == 0

    def older(name, data):
        if name == "manifest.json":
            m = json.loads(data)
            m["revision"] = "0000_older"
            return json.dumps(m)
        return data

    _rewrite(out, other, older, app.config["MIMAMORI_BACKUP_KEY"])
    session.remove()
    _empty_tables()
    res = cli.invoke(args=["restore", "--force", str(other)])
    assert res.exit_code == 1
    assert "schema revision 0000_older" in res.output
    assert all(not rows for rows in _snapshot(session).values())


def test_restore_refuses_a_damaged_backup_and_writes_nothing(app, session, make, cli, tmp_path):
    make.school(name="元の学校")
    session.commit()
    out, damaged = tmp_path / "b.zip", tmp_path / "damaged.zip"
    assert cli.invoke(args=["backup", str(out)]).exit_code == 0
    _rewrite(out, damaged, lambda name, data: data.replace("元の学校".encode(), "別の学校".encode()),
             app.config["MIMAMORI_BACKUP_KEY"])
    session.remove()
    _empty_tables()
    res = cli.invoke(args=["restore", str(damaged)])
    assert res.exit_code == 1
    assert "damaged" in res.output and "school" in res.output
    assert all(not rows for rows in _snapshot(session).values())

    not_a_backup = tmp_path / "notes.zip"
    not_a_backup.write_bytes(b"PK\x03\x04 not really")
    res = cli.invoke(args=["restore", str(not_a_backup)])
    assert res.exit_code == 1 and "not a Mimamori backup" in res.output

    sealed_junk = tmp_path / "junk.bak"
    with open(sealed_junk, "wb") as raw, sealed.SealedWriter(raw, sealed.parse_keys(app.config["MIMAMORI_BACKUP_KEY"])[0]) as w:
        w.write(b"a sealed file that holds no zip")
    res = cli.invoke(args=["restore", str(sealed_junk)])
    assert res.exit_code == 1 and "not a Mimamori backup" in res.output


def test_restore_that_fails_verification_leaves_nothing_behind(app, session, make, cli, tmp_path, monkeypatch):
    make.school()
    session.commit()
    out = tmp_path / "b.zip"
    assert cli.invoke(args=["backup", str(out)]).exit_code == 0
    session.remove()
    _empty_tables()
    real = backup_service.table_digest

    def wrong(conn, table):
        got = real(conn, table)
        return backup_service.TableSummary(got.name, got.rows, "0" * 64) if table.name == "school" else got

    monkeypatch.setattr(backup_service, "table_digest", wrong)
    res = cli.invoke(args=["restore", str(out)])
    assert res.exit_code == 1 and "verification failed: table school" in res.output
    assert all(not rows for rows in _snapshot(session).values())  # one transaction, rolled back


def test_backup_on_a_full_disk_leaves_no_file_and_says_so(app, session, make, cli, tmp_path, monkeypatch):
    make.school()
    session.commit()

    class FullDisk:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 512:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    real = backup_service._create_file
    monkeypatch.setattr(backup_service, "_create_file", lambda path: FullDisk(real(path)))
    out = tmp_path / "b.zip"
    res = cli.invoke(args=["backup", str(out)])
    assert res.exit_code == 1
    assert "the disk is full" in res.output and "no backup file was written" in res.output
    assert list(tmp_path.iterdir()) == []  # neither the backup nor a partial file


def test_scheduler_locks_are_neither_backed_up_nor_counted_as_data(app, session, make, cli, tmp_path):
    from datetime import timedelta

    from portal.orm import utcnow
    from portal.scheduler import SchedulerLock

    make.school()
    session.add(SchedulerLock(name="scheduler:leader", holder="old-host:1", expires_at=utcnow() + timedelta(minutes=1)))
    session.commit()
    out = tmp_path / "b.zip"
    assert cli.invoke(args=["backup", str(out)]).exit_code == 0
    with open_backup(out, app.config["MIMAMORI_BACKUP_KEY"]) as zf:
        assert "scheduler_lock" not in [t["name"] for t in json.loads(zf.read("manifest.json"))["tables"]]
    session.remove()
    _empty_tables()
    session.add(SchedulerLock(name="scheduler:leader", holder="this-host:2", expires_at=utcnow() + timedelta(minutes=1)))
    session.commit()  # a scheduler of the new deployment already holds its lock
    res = cli.invoke(args=["restore", str(out)])
    assert res.exit_code == 0, res.output
    assert [lock.holder for lock in session.scalars(sa.select(SchedulerLock))] == ["this-host:2"]


# -- the backup is sealed with MIMAMORI_BACKUP_KEY -----------------------------------


def _personal_values(session) -> list[bytes]:
    """Names, kana, addresses, e-mail addresses, birth dates and password hashes the demo holds."""
    from portal.people.models import Guardian, Staff

    values: set[str] = set()
    for c in session.scalars(sa.select(Child).limit(20)):
        values |= {c.name, c.name_kana, c.birth_date.isoformat()}
    for g in session.scalars(sa.select(Guardian).limit(20)):
        values |= {v for v in (g.name, g.email, g.address, g.password_hash) if v}
    for s in session.scalars(sa.select(Staff).limit(10)):
        values.add(s.password_hash)
    return [v.encode() for v in values if len(v) >= 6]


def _backup(cli, path) -> None:
    res = cli.invoke(args=["backup", str(path)])
    assert res.exit_code == 0, res.output


def _wiped(session) -> None:
    session.remove()
    _empty_tables()


def _nothing_restored(session) -> bool:
    return all(not rows for rows in _snapshot(session).values())


def test_backup_file_names_no_child_no_guardian_and_no_password_hash_in_clear(app, session, demo_data, cli, tmp_path):
    secrets_in_db = _personal_values(session)
    assert len(secrets_in_db) >= 30
    assert any(v.startswith(b"$argon2") for v in secrets_in_db)  # the password hashes are among them
    out = tmp_path / "b.bak"
    _backup(cli, out)
    data = out.read_bytes()
    assert data.startswith(sealed.MAGIC) and not zipfile.is_zipfile(out)
    for value in secrets_in_db:
        assert value not in data
    assert b"manifest.json" not in data and b"tables/" not in data  # not even the zip's file names
    assert (out.stat().st_mode & 0o077) == 0
    # ... and with the key it is the whole database.
    with open_backup(out, app.config["MIMAMORI_BACKUP_KEY"]) as zf:
        inside = b"".join(zf.read(n) for n in zf.namelist())
    assert all(v in inside for v in secrets_in_db)


def test_restore_without_the_backup_key_is_refused_and_restores_nothing(app, session, make, cli, tmp_path, monkeypatch):
    make.school(name="元の学校")
    session.commit()
    out = tmp_path / "b.bak"
    _backup(cli, out)
    _wiped(session)
    monkeypatch.setitem(app.config, "MIMAMORI_BACKUP_KEY", "")
    res = cli.invoke(args=["restore", str(out)])
    assert res.exit_code == 1
    assert "restore refused" in res.output and "no backup key is configured (MIMAMORI_BACKUP_KEY)" in res.output
    assert _nothing_restored(session)
    # Nor is a backup ever written without one (never in clear).
    res = cli.invoke(args=["backup", str(tmp_path / "c.bak")])
    assert res.exit_code == 1 and "MIMAMORI_BACKUP_KEY" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.bak"]


def test_restore_with_another_key_is_refused_and_restores_nothing(app, session, make, cli, tmp_path, monkeypatch):
    make.school(name="元の学校")
    session.commit()
    out = tmp_path / "b.bak"
    _backup(cli, out)
    _wiped(session)
    monkeypatch.setitem(app.config, "MIMAMORI_BACKUP_KEY", sealed.generate_key())
    res = cli.invoke(args=["restore", str(out)])
    assert res.exit_code == 1
    assert "encrypted with a key that is not in MIMAMORI_BACKUP_KEY" in res.output and "nothing was restored" in res.output
    assert _nothing_restored(session)

    # A forged header claiming the other key's id does not help: the file key is derived from the key.
    other = sealed.parse_keys(app.config["MIMAMORI_BACKUP_KEY"])[0]
    data = bytearray(out.read_bytes())
    data[14:22] = sealed.key_id(other)
    forged = tmp_path / "forged.bak"
    forged.write_bytes(bytes(data))
    res = cli.invoke(args=["restore", str(forged)])
    assert res.exit_code == 1 and "fails authentication" in res.output
    assert _nothing_restored(session)


def _chunks(path, chunk_size):
    data = path.read_bytes()
    header, body = data[: sealed.HEADER_SIZE], data[sealed.HEADER_SIZE :]
    stride = chunk_size + sealed.TAG
    return header, [body[i : i + stride] for i in range(0, len(body), stride)]


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 4 KiB, so that a small backup spans many of them."""
    monkeypatch.setattr(sealed, "CHUNK_SIZE", 4096)
    return 4096


def test_restore_refuses_a_tampered_truncated_or_reordered_backup_and_restores_nothing(
    app, session, demo_data, cli, tmp_path, small_chunks
):
    out = tmp_path / "b.bak"
    _backup(cli, out)
    header, chunks = _chunks(out, small_chunks)
    assert len(chunks) >= 6
    _wiped(session)

    def flip(data: bytes, at: int) -> bytes:
        return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]

    middle = len(chunks) // 2
    attacks = {
        "one bit of a chunk in the middle": header + b"".join(chunks[:middle]) + flip(chunks[middle], 100)
        + b"".join(chunks[middle + 1 :]),
        "one bit of the last chunk's tag": header + b"".join(chunks[:-1]) + flip(chunks[-1], len(chunks[-1]) - 1),
        "one bit of the header (the salt)": flip(header, 30) + b"".join(chunks),
        "the chunk size in the header": header[:10] + (8192).to_bytes(4, "big") + header[14:] + b"".join(chunks),
        "cut inside the last chunk": header + b"".join(chunks)[:-7],
        "cut at a chunk boundary": header + b"".join(chunks[:-1]),
        "cut to half": header + b"".join(chunks[:middle]),
        "cut to the header": header,
        "two chunks swapped": header + b"".join([chunks[1], chunks[0], *chunks[2:]]),
        "a chunk repeated": header + b"".join([chunks[0], *chunks[:-1], chunks[-1]]),
        "a chunk dropped": header + b"".join([chunks[0], *chunks[2:]]),
        "a chunk appended": header + b"".join(chunks) + chunks[1],
    }
    for what, data in attacks.items():
        bad = tmp_path / "bad.bak"
        bad.write_bytes(data)
        res = cli.invoke(args=["restore", "--force", str(bad)])
        assert res.exit_code == 1, what
        assert "restore refused" in res.output and "nothing was restored" in res.output, (what, res.output)
        assert "truncated or has been altered" in res.output or "altered" in res.output, what
        assert _nothing_restored(session), what

    res = cli.invoke(args=["restore", str(out)])  # the untouched file still restores
    assert res.exit_code == 0, res.output


def test_an_unencrypted_backup_restores_only_when_the_operator_says_so(app, session, make, cli, tmp_path):
    make.school(name="元の学校")
    session.commit()
    out, plain = tmp_path / "b.bak", tmp_path / "old.zip"
    _backup(cli, out)
    with open_backup(out, app.config["MIMAMORI_BACKUP_KEY"]) as zin, zipfile.ZipFile(plain, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
    _wiped(session)
    res = cli.invoke(args=["restore", str(plain)])
    assert res.exit_code == 1 and "not encrypted" in res.output and "--allow-plaintext" in res.output
    assert _nothing_restored(session)
    res = cli.invoke(args=["restore", "--allow-plaintext", str(plain)])
    assert res.exit_code == 0, res.output
    last = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert last.action == "maintenance.restore" and last.detail["encrypted"] is False


def test_backup_key_rotation_new_backups_use_the_first_key_old_ones_still_restore(
    app, session, make, cli, tmp_path, monkeypatch
):
    from portal.people.models import School

    make.school(name="元の学校")
    session.commit()
    old = app.config["MIMAMORI_BACKUP_KEY"]
    before = tmp_path / "before.bak"
    _backup(cli, before)

    new = sealed.generate_key()
    monkeypatch.setitem(app.config, "MIMAMORI_BACKUP_KEY", f"{new},{old}")
    after = tmp_path / "after.bak"
    _backup(cli, after)
    key_of = lambda path: path.read_bytes()[14:22]  # noqa: E731
    assert key_of(after) == sealed.key_id(sealed.parse_keys(new)[0]) != key_of(before)

    for path in (before, after):
        _wiped(session)
        res = cli.invoke(args=["restore", str(path)])
        assert res.exit_code == 0, res.output
        assert [s.name for s in session.scalars(sa.select(School))] == ["元の学校"]

    monkeypatch.setitem(app.config, "MIMAMORI_BACKUP_KEY", new)  # the old key retired
    _wiped(session)
    res = cli.invoke(args=["restore", str(before)])
    assert res.exit_code == 1 and "not in MIMAMORI_BACKUP_KEY" in res.output
    assert _nothing_restored(session)


def test_a_large_backup_is_streamed_in_chunks_and_round_trips(app, session, demo_data, cli, tmp_path, small_chunks):
    before = _snapshot(session)
    out = tmp_path / "b.bak"
    _backup(cli, out)
    _header, chunks = _chunks(out, small_chunks)
    assert len(chunks) > 10 and all(len(c) == small_chunks + sealed.TAG for c in chunks[:-1])
    _wiped(session)
    res = cli.invoke(args=["restore", str(out)])
    assert res.exit_code == 0, res.output
    after = _snapshot(session)
    assert all(after[name] == rows for name, rows in before.items() if name != "audit_event")


def test_backup_key_is_its_own_key_required_in_production_and_checked(tmp_path):
    from cryptography.fernet import Fernet

    from portal.audit.keys import new_hmac_key, new_signing_key

    enc = Fernet.generate_key().decode()
    base = {"MIMAMORI_ENV": "production", "SECRET_KEY": "x" * 40, "MIMAMORI_ENCRYPTION_KEY": enc,
            "DATABASE_URL": "postgresql://m@db.example.invalid/m",
            "MIMAMORI_AUDIT_KEY": new_hmac_key(), "MIMAMORI_AUDIT_SIGNING_KEY": new_signing_key()}
    with pytest.raises(ConfigError, match="MIMAMORI_BACKUP_KEY is required"):
        load_config(tmp_path, base)
    with pytest.raises(ConfigError, match="must not reuse a key of MIMAMORI_ENCRYPTION_KEY"):
        load_config(tmp_path, {**base, "MIMAMORI_BACKUP_KEY": f"{sealed.generate_key()},{enc}"})
    with pytest.raises(ConfigError, match="MIMAMORI_BACKUP_KEY: key 1 is not 32 bytes"):
        load_config(tmp_path, {**base, "MIMAMORI_BACKUP_KEY": "too-short"})
    key = sealed.generate_key()
    assert load_config(tmp_path, {**base, "MIMAMORI_BACKUP_KEY": key})["MIMAMORI_BACKUP_KEY"] == key
    assert not (tmp_path / "backup_key").exists()  # production never generates one


def test_the_commands_take_the_backup_key_from_the_environment(app, session, make, tmp_path):
    """As an operator runs them: `flask --app portal backup` / `restore` in their own process."""
    import subprocess

    from portal.people.models import School
    from tests.reliability import processes

    make.school(name="環境変数の学校")
    session.commit()
    out = tmp_path / "b.bak"

    def flask(*args, key):
        env = {**processes.env_for(app), "MIMAMORI_BACKUP_KEY": key}
        return subprocess.run([processes.FLASK, "--app", "portal", *args], cwd=processes.ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    key = sealed.generate_key()
    res = flask("backup", str(out), key=key)
    assert res.returncode == 0, res.stderr
    assert "環境変数の学校".encode() not in out.read_bytes()
    _wiped(session)
    res = flask("restore", str(out), key=sealed.generate_key())
    assert res.returncode == 1 and "not in MIMAMORI_BACKUP_KEY" in res.stderr
    assert _nothing_restored(session)
    res = flask("restore", str(out), key=f"{sealed.generate_key()},{key}")
    assert res.returncode == 0, res.stderr
    session.expire_all()
    assert [s.name for s in session.scalars(sa.select(School))] == ["環境変数の学校"]
