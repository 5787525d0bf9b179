"""The audit log cannot be rewritten unseen by someone who holds only the database.

Each test attacks the log the way it was attacked by hand: straight SQL on
the table (the application itself refuses to change a row), then
``flask --app portal audit verify``. What the attacker does not have is the
audit HMAC key and the checkpoint signing key (the environment), nor the
checkpoints (another volume and the data stewards' mailboxes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal.audit import keys as audit_keys
from portal.audit import merkle, note
from portal.audit import service as audit
from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.auth.principal import SYSTEM
from portal.extensions import db


@pytest.fixture(autouse=True)
def checkpoint_dir(app, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    monkeypatch.setitem(app.config, "MIMAMORI_AUDIT_CHECKPOINT_DIR", str(folder))
    return folder


def _rows(session, n: int, action: str = "test.action") -> list[int]:
    ids = [audit.record(session, SYSTEM, action, detail={"n": i}).id for i in range(n)]
    session.commit()
    return ids


def _verify(app, *args):
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])


def _checkpoint(app):
    res = app.test_cli_runner().invoke(args=["audit", "checkpoint", "--no-mail"])
    assert res.exit_code == 0, res.output
    return res


def _sql(session, stmt: str, **params) -> None:
    session.execute(text(stmt), params)
    session.commit()


def _rechain(session, link, *, renumber: bool, key_id: str | None = "keep") -> None:
    """Recompute every link after tampering, as the attacker would, with ``link(prev, seq, row)``."""
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    session.expunge_all()
    prev = audit.GENESIS
    for n, ev in enumerate(rows, start=1):
        seq = n if renumber else ev.seq
        new = link(prev, seq, ev)
        session.execute(text("UPDATE audit_event SET seq = :s, prev_hash = :p, hash = :h, key_id = :k WHERE id = :id"),
                        {"s": seq, "p": prev, "h": new, "k": ev.key_id if key_id == "keep" else key_id, "id": ev.id})
        prev = new
    session.commit()


def _real_key_link(prev: str, seq: int, ev) -> str:
    """An insider who has the audit key too."""
    return audit_keys.current().mac(ev.key_id, audit.link_input(prev, seq, ev.mac))


# -- the four attacks ---------------------------------------------------------------------


def test_truncated_audit_tail_is_detected_by_the_signed_checkpoint(app, session, checkpoint_dir):
    _rows(session, 6)
    _checkpoint(app)
    assert _verify(app).exit_code == 0

    _sql(session, "DELETE FROM audit_event WHERE seq > 4")  # the last two rows, cut
    res = _verify(app)
    assert res.exit_code == 1, res.output
    assert "[truncated]" in res.output and "covers 6 rows but the log has 4" in res.output
    assert "the last 2 rows were removed" in res.output

    # Without the checkpoint the cut is invisible: the limit the output states plainly.
    for path in checkpoint_dir.iterdir():
        path.unlink()
    res = _verify(app)
    assert res.exit_code == 0
    assert "rows written after the last checkpoint can still be cut unseen" in res.output


def test_deleted_audit_row_is_reported(app, session):
    ids = _rows(session, 5)
    _sql(session, "DELETE FROM audit_event WHERE id = :id", id=ids[2])
    res = _verify(app)
    assert res.exit_code == 1
    assert "[gap] sequence number 3 missing" in res.output
    assert f"[removed] row {ids[3]} (seq 4): previous hash does not match" in res.output


def _unkeyed_link(prev: str, seq: int, ev) -> str:
    """The application's hash function before this fix: SHA-256 over the previous hash and the content."""
    return hashlib.sha256(prev.encode() + b"\n" + audit._canonical(ev)).hexdigest()


def _guessed_key_link(prev: str, seq: int, ev) -> str:
    """Today's function, with a key of the attacker's own (the real one is not in the database)."""
    return hmac.new(b"x" * 32, audit.link_input(prev, seq, ev.mac), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("link, key_id", [(_unkeyed_link, None), (_guessed_key_link, "keep")],
                         ids=["old unkeyed chain", "guessed key"])
def test_rechained_audit_log_fails_verify_without_the_key(app, session, link, key_id):
    ids = _rows(session, 5)
    _sql(session, "DELETE FROM audit_event WHERE id = :id", id=ids[1])
    _rechain(session, link, renumber=True, key_id=key_id)  # no gap, every prev_hash matches
    assert session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all() == [1, 2, 3, 4]

    res = _verify(app)
    assert res.exit_code == 1, res.output
    assert "[rechained]" in res.output and "without the key" in res.output
    assert "[gap]" not in res.output and "[removed]" not in res.output


def test_rechained_audit_log_with_the_key_is_caught_by_the_checkpoint(app, session):
    ids = _rows(session, 5)
    _checkpoint(app)
    _sql(session, "DELETE FROM audit_event WHERE id = :id", id=ids[1])
    _rechain(session, _real_key_link, renumber=True)
    _rows(session, 1, "test.after")  # the log grows past the checkpoint's size again

    res = _verify(app)
    assert res.exit_code == 1, res.output
    assert "[rewritten] the first 5 rows are not the 5 rows the checkpoint" in res.output
    assert "[rechained]" not in res.output  # the key holder's links are valid: only the checkpoint sees it


def test_audit_gap_in_sequence_is_reported(app, session):
    ids = _rows(session, 5)
    _sql(session, "DELETE FROM audit_event WHERE id = :id", id=ids[2])
    _rechain(session, _real_key_link, renumber=False)  # valid links, seq 1 2 4 5: only the numbering shows it
    res = _verify(app)
    assert res.exit_code == 1, res.output
    assert f"[gap] sequence number 3 missing before row {ids[3]}" in res.output
    assert "[removed]" not in res.output and "[rechained]" not in res.output


def test_audit_row_inserted_straight_into_the_table_is_never_chained(app, session):
    _rows(session, 2)
    _sql(session, "INSERT INTO audit_event (at, actor_kind, role, action, detail) "
                  "VALUES (CURRENT_TIMESTAMP, 'staff', 'teacher', 'child.read', '{}')")
    assert audit.sequence(db.engine) == 0
    forged = session.scalar(select(AuditEvent).where(AuditEvent.seq.is_(None)))
    assert forged is not None
    res = _verify(app)
    assert res.exit_code == 1 and f"[forged] row {forged.id} was not written by the application" in res.output


# -- checkpoints, the public key alone ------------------------------------------------------


def _independent_open(note_text: str, vkey: str) -> tuple[str, int, bytes]:
    """C2SP signed-note and checkpoint verification from the specs, with nothing of the application."""
    name, hexid, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[0] == 1 and len(raw) == 33
    pub = Ed25519PublicKey.from_public_bytes(raw[1:])
    assert hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex() == hexid
    body, sigs = note_text.split("\n\n", 1)
    body += "\n"
    dash, signer, sig_b64 = sigs.rstrip("\n").split(" ")
    assert dash == "\u2014" and signer == name
    blob = base64.b64decode(sig_b64)
    assert blob[:4].hex() == hexid
    pub.verify(blob[4:], body.encode())  # raises InvalidSignature
    origin, size, root = body.rstrip("\n").split("\n")
    return origin, int(size), base64.b64decode(root)


def _rfc9162_root(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _rfc9162_root(hashes[:k]) + _rfc9162_root(hashes[k:])).digest()


def test_checkpoint_verifies_with_the_public_key_alone(app, session, checkpoint_dir):
    _rows(session, 7)
    _checkpoint(app)
    vkey = app.test_cli_runner().invoke(args=["audit", "public-key"]).output.strip()
    (path,) = checkpoint_dir.iterdir()
    signed = path.read_text(encoding="utf-8")

    origin, size, root = _independent_open(signed, vkey)
    assert size == 7 and origin == audit_keys.current().name
    # ... and the steward recomputes the tree head from the log (no key needed for that either).
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    leaves = [hashlib.sha256(b"\x00" + audit.leaf_data(r.seq, audit._canonical(r))).digest() for r in rows]
    assert _rfc9162_root(leaves) == root
    assert note.open_checkpoint(signed, vkey).size == 7

    # A checkpoint altered, or signed by another key, does not verify.
    forged_size = signed.replace("\n7\n", "\n9\n", 1)
    with pytest.raises(InvalidSignature):
        _independent_open(forged_size, vkey)
    with pytest.raises(note.NoteError):
        note.open_checkpoint(forged_size, vkey)
    other = note.sign(note.checkpoint_text(origin, 9, root), origin, Ed25519PrivateKey.generate())
    with pytest.raises(note.NoteError):
        note.open_checkpoint(other, vkey)
    # A forged checkpoint dropped into the directory is reported, not trusted.
    (checkpoint_dir / "checkpoint-000000000009.txt").write_text(other, encoding="utf-8")
    res = _verify(app)
    assert res.exit_code == 1 and "no signature by a known key" in res.output


def test_checkpoint_format_matches_the_published_reference_vectors():
    # golang.org/x/mod/sumdb/note: the example signer and its signed note (Ed25519 is deterministic).
    seed = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
    key = Ed25519PrivateKey.from_private_bytes(seed)
    body = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    signed = note.sign(body, "PeterNeumann", key)
    assert signed == body + ("\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvq"
                             "fqdngotpRZb6KE6RyyBwJnAM=\n")
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    assert note.verifier_key("PeterNeumann", key.public_key()) == vkey
    assert note.open_note(signed, [note.parse_verifier_key(vkey)])[0] == body
    # transparency-dev/formats: a verifier key whose base64 holds a "+".
    assert note.parse_verifier_key("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6").name == "TEST"
    # RFC 6962 / 9162 tree heads of the reference leaves, sizes 1 to 8.
    leaves = [bytes.fromhex(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]
    roots = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
             "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
             "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
             "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
             "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
             "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
             "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
    tree = merkle.TreeHasher()
    for n, leaf in enumerate(leaves, start=1):
        tree.add(leaf)
        assert tree.root().hex() == roots[n - 1] == merkle.root(leaves[:n]).hex()
    assert merkle.TreeHasher().root() == hashlib.sha256(b"").digest()


def test_hourly_checkpoint_job_writes_and_mails_it_to_the_data_stewards(app, session, make, outbox, checkpoint_dir):
    from portal.scheduler import registered_jobs, run_job

    assert registered_jobs()["audit.checkpoint"].trigger_kwargs == {"trigger": "interval", "hours": 1}
    steward = make.staff("data_steward", locale="en")
    make.staff("data_steward", active=False)
    make.staff("teacher")
    _rows(session, 3)
    assert run_job("audit.checkpoint", app=app)
    (path,) = checkpoint_dir.iterdir()
    assert [m["To"] for m in outbox] == [steward.email]
    assert path.read_text(encoding="utf-8").strip() in outbox[0].get_content()
    assert "Audit log checkpoint" in outbox[0]["Subject"]
    # Nothing new: no second file, no second mail.
    assert run_job("audit.checkpoint", app=app)
    assert len(list(checkpoint_dir.iterdir())) == 1 and len(outbox) == 1


def test_a_broken_log_is_never_signed_and_the_stewards_are_told(app, session, make, outbox, checkpoint_dir):
    make.staff("data_steward", locale="en")
    ids = _rows(session, 3)
    _sql(session, "DELETE FROM audit_event WHERE id = :id", id=ids[1])
    res = app.test_cli_runner().invoke(args=["audit", "checkpoint"])
    assert res.exit_code == 1 and "no checkpoint was signed" in res.output
    assert not checkpoint_dir.exists() or not list(checkpoint_dir.iterdir())
    assert outbox and "failed its check" in outbox[-1]["Subject"]


def test_audit_keys_rotate_and_old_rows_and_checkpoints_still_verify(app, session, monkeypatch):
    old_mac, old_sig = app.config["MIMAMORI_AUDIT_KEY"], app.config["MIMAMORI_AUDIT_SIGNING_KEY"]
    _rows(session, 3)
    _checkpoint(app)
    monkeypatch.setitem(app.config, "MIMAMORI_AUDIT_KEY", f"{audit_keys.new_hmac_key()},{old_mac}")
    monkeypatch.setitem(app.config, "MIMAMORI_AUDIT_SIGNING_KEY", f"{audit_keys.new_signing_key()},{old_sig}")
    _rows(session, 2, "test.after")
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert len({r.key_id for r in rows[:3]}) == 1 and rows[3].key_id != rows[0].key_id
    _checkpoint(app)
    res = _verify(app)
    assert res.exit_code == 0 and "2 signed checkpoints match" in res.output, res.output
    assert len(app.test_cli_runner().invoke(args=["audit", "public-key"]).output.split()) == 2

    # Drop the old keys too early: the old rows and the old checkpoint are reported, not silently trusted.
    monkeypatch.setitem(app.config, "MIMAMORI_AUDIT_KEY", app.config["MIMAMORI_AUDIT_KEY"].split(",")[0])
    monkeypatch.setitem(app.config, "MIMAMORI_AUDIT_SIGNING_KEY", app.config["MIMAMORI_AUDIT_SIGNING_KEY"].split(",")[0])
    res = _verify(app)
    assert res.exit_code == 1 and "not configured" in res.output and "no signature by a known key" in res.output


# -- sequencing: no request queues on the chain lock --------------------------------------------


def _chain_lock_holders(conn) -> int:
    """Sessions of this database holding the chain lock (advisory locks are per database; others share the server)."""
    return conn.execute(text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = :k AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"), {"k": audit.CHAIN_LOCK}).scalar()


def test_concurrent_requests_do_not_queue_on_the_audit_lock(app, session, make):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises every writer itself; the chain lock is PostgreSQL's")
    teacher = auth.principal_for(make.staff("teacher"))
    session.commit()
    a, b = Session(db.engine), Session(db.engine)
    watcher = db.engine.connect()
    try:
        # Two transactions write audit rows at once; neither holds the chain lock, neither waits.
        for s in (a, b):
            s.execute(text("SET LOCAL lock_timeout = '2s'"))
        audit.record(a, teacher, "test.first")
        audit.record_child_reads(b, teacher, [1, 2, 3], "test.list")
        audit.record(b, teacher, "test.second")
        audit.record(a, teacher, "test.third")
        assert _chain_lock_holders(watcher) == 0
        b.commit()
        a.commit()
        watcher.rollback()
        # Each commit chained what it wrote, in commit order, without a gap.
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
        assert [r.action for r in rows] == ["child.read"] * 3 + ["test.second", "test.first", "test.third"]
        assert audit.verify(session).ok

        # The old behaviour, for comparison: inline chaining holds the lock from the first write to commit.
        app.config["MIMAMORI_AUDIT_SEQUENCING"] = "inline"
        for s in (a, b):
            s.execute(text("SET LOCAL lock_timeout = '2s'"))
        audit.record(a, teacher, "test.inline")
        assert _chain_lock_holders(watcher) == 1
        from sqlalchemy.exc import OperationalError

        with pytest.raises(OperationalError, match="lock timeout"):
            audit.record(b, teacher, "test.queued")
        b.rollback()
        a.commit()
        watcher.rollback()
    finally:
        app.config["MIMAMORI_AUDIT_SEQUENCING"] = "deferred"
        a.close()
        b.close()
        watcher.close()


def test_two_sequencers_at_once_chain_every_row_once(app, session, make):
    teacher = auth.principal_for(make.staff("teacher"))
    session.commit()
    writer = Session(db.engine)
    audit.record_child_reads(writer, teacher, range(1, 201), "test.list")
    writer.info.pop("audit_unchained")  # commit without chaining: the two sequencers below do it
    writer.commit()
    writer.close()
    barrier, counts, errors = threading.Barrier(2, timeout=30), [], []

    def run():
        with app.app_context():
            try:
                barrier.wait()
                counts.append(audit.sequence(db.engine, wait=True))
            except Exception as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and sorted(counts) == [0, 200]
    assert session.scalars(select(AuditEvent.seq).order_by(AuditEvent.seq)).all() == list(range(1, 201))
    assert audit.verify(session).ok


def test_a_page_that_writes_audit_rows_leaves_them_chained_after_its_response(app, session, make, login, client):
    steward = make.staff("data_steward")
    session.commit()
    login(steward)
    resp = client.get("/staff/audit/?action=child.read")
    assert resp.status_code == 200
    resp.close()  # the server has sent the response and closes it: then the sequencer runs
    row = session.scalar(select(AuditEvent).where(AuditEvent.action == "audit.searched"))
    assert row.seq == 1 and row.hash and row.prev_hash == audit.GENESIS


# -- the same class: records the application calls append-only are anchored in the log ----------


def test_consent_event_forged_altered_or_deleted_in_the_database_fails_audit_verify(app, session, make):
    from consent.models import ConsentEvent
    from consent.testing import give_consent

    child, other = make.child(), make.child()
    make.guardian(child)
    make.guardian(other)
    give_consent(session, child, "wellbeing_survey")
    give_consent(session, child, "wellbeing_survey", withdraw=True)
    session.commit()
    other_id = other.id
    grant, withdrawal = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)).all()
    grant_id, withdrawal_id = grant.id, withdrawal.id
    assert _verify(app).exit_code == 0

    # A grant for another child, copied straight into the table: that child would enter the gate.
    _sql(session, "INSERT INTO consent_event (child_id, purpose_id, party, guardian_id, action, version, document_id, "
                  "locale, at, recorded_at, channel) SELECT :c, purpose_id, party, NULL, action, version, document_id, "
                  "locale, at, recorded_at, channel FROM consent_event WHERE id = :id", c=other_id, id=grant_id)
    _sql(session, "DELETE FROM consent_pending_purge WHERE event_id = :id", id=withdrawal_id)
    _sql(session, "DELETE FROM consent_event WHERE id = :id", id=withdrawal_id)  # the withdrawal, undone
    _sql(session, "UPDATE consent_event SET version = 9 WHERE id = :id", id=grant_id)
    res = _verify(app)
    assert res.exit_code == 1, res.output
    assert "[unanchored] consent: consent event" in res.output
    assert "has no audit row" in res.output
    assert f"consent event {withdrawal_id} was deleted" in res.output
    assert f"consent event {grant_id} differs from its audit row" in res.output


def test_demo_consent_history_is_anchored_in_the_audit_log(app, session):
    res = app.test_cli_runner().invoke(args=["demo", "load"])
    assert res.exit_code == 0, res.output
    res = _verify(app)
    assert res.exit_code == 0, res.output


def test_an_emptied_checkpoint_folder_is_called_out_by_verify(app, session, checkpoint_dir):
    """Someone who cut the log and emptied the checkpoint folder still leaves verify saying so."""
    from datetime import timedelta

    from portal.orm import utcnow

    audit.record_many(session, SYSTEM, [{"action": "test.old", "at": utcnow() - timedelta(hours=3)} for _ in range(3)])
    session.commit()
    _checkpoint(app)
    res = _verify(app)
    assert res.exit_code == 0 and "no signed checkpoint was found" not in res.output
    for path in checkpoint_dir.iterdir():
        path.unlink()
    res = _verify(app)
    assert "WARNING: the log has rows older than two hours but no signed checkpoint was found" in res.output
    assert "audit verify --checkpoint FILE" in res.output
