"""audit: keyed chain, the chain's own sequence number, rows written unchained

Revision ID: 0004_audit
Revises: 0003_reg

New columns: ``key_id`` and ``mac`` (each row's HMAC under an audit key from
the environment), ``seq`` (the chain's own gapless number); ``prev_hash``
and ``hash`` may be NULL (a row written and not chained yet).

Existing rows are sealed here: their old unkeyed SHA-256 chain is checked
(the upgrade stops if it is broken: that is an incident to look into
first), then each gets ``seq`` in id order (the old chain order), a MAC and a
keyed link under the first ``MIMAMORI_AUDIT_KEY``. This needs the
application's audit key, so it runs online only (``flask --app portal db
upgrade``), not with ``--sql``.
"""
import hashlib

import sqlalchemy as sa
from alembic import context, op

import portal.orm

revision = "0004_audit"
down_revision = "0003_reg"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def _seal_existing_rows():
    from portal.audit import keys as audit_keys
    from portal.audit.service import _canonical_row, link_input, row_mac_input

    bind = op.get_bind()
    t = sa.table(
        "audit_event", sa.column("id", sa.Integer), sa.column("at", portal.orm.UTCDateTime()),
        sa.column("actor_kind", sa.String), sa.column("actor_id", sa.Integer), sa.column("role", sa.String),
        sa.column("action", sa.String), sa.column("child_id", sa.Integer), sa.column("purpose", sa.String),
        sa.column("detail", sa.JSON), sa.column("request_id", sa.String), sa.column("prev_hash", sa.String),
        sa.column("hash", sa.String), sa.column("key_id", sa.String), sa.column("mac", sa.String),
        sa.column("seq", sa.Integer),
    )
    rows = bind.execute(sa.select(t).order_by(t.c.id)).mappings().all()
    if not rows:
        return
    if context.is_offline_mode():
        raise RuntimeError("sealing the existing audit rows needs the audit key: run the upgrade online")
    k = audit_keys.current()
    old_prev, new_prev, updates = GENESIS, GENESIS, []
    for seq, r in enumerate(rows, start=1):
        content = _canonical_row(r)
        if r["prev_hash"] != old_prev or hashlib.sha256(old_prev.encode() + b"\n" + content).hexdigest() != r["hash"]:
            raise RuntimeError(f"the audit chain is broken at row {r['id']}: run `flask --app portal audit verify` "
                               "on the old version and investigate before upgrading")
        old_prev = r["hash"]
        mac = k.mac(k.primary_hmac_id, row_mac_input(content))
        link = k.mac(k.primary_hmac_id, link_input(new_prev, seq, mac))
        updates.append({"_id": r["id"], "_seq": seq, "_key": k.primary_hmac_id, "_mac": mac, "_prev": new_prev,
                        "_hash": link})
        new_prev = link
    # Clear the old hashes first: the unique index must not see an old and a new value collide.
    bind.execute(sa.update(t).values(hash=None))
    bind.execute(
        sa.update(t).where(t.c.id == sa.bindparam("_id")).values(
            seq=sa.bindparam("_seq"), key_id=sa.bindparam("_key"), mac=sa.bindparam("_mac"),
            prev_hash=sa.bindparam("_prev"), hash=sa.bindparam("_hash")),
        updates,
    )


def upgrade():
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_event_seq"), ["seq"])
    _seal_existing_rows()


def downgrade():
    # Keyed rows cannot go back to the unkeyed chain.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM audit_event")).scalar():
        raise RuntimeError("the audit log holds keyed rows; it cannot be downgraded to the unkeyed chain")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_event_seq"), type_="unique")
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("seq")
        batch_op.drop_column("mac")
        batch_op.drop_column("key_id")
