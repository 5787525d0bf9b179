"""Backup and restore: back up, wipe, restore, and every table comes back the same.

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
from portal.maintenance import service as backup_service
from portal.maintenance.service import backed_up_tables, raw_table
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
    with zipfile.ZipFile(out) as zf:
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
    with zipfile.ZipFile(out) as zf:
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


def _rewrite(src, dst, change):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
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

    _rewrite(out, other, older)
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
    _rewrite(out, damaged, lambda name, data: data.replace("元の学校".encode(), "別の学校".encode()))
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
    with zipfile.ZipFile(out) as zf:
        assert "scheduler_lock" not in [t["name"] for t in json.loads(zf.read("manifest.json"))["tables"]]
    session.remove()
    _empty_tables()
    session.add(SchedulerLock(name="scheduler:leader", holder="this-host:2", expires_at=utcnow() + timedelta(minutes=1)))
    session.commit()  # a scheduler of the new deployment already holds its lock
    res = cli.invoke(args=["restore", str(out)])
    assert res.exit_code == 0, res.output
    assert [lock.holder for lock in session.scalars(sa.select(SchedulerLock))] == ["this-host:2"]
