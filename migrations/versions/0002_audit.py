"""audit: keyed chain, the chain's own sequence number, rows written unchained

Revision ID: 0002_audit
Revises: 0001

Existing rows keep their unkeyed SHA-256 links (``key_id`` NULL: verify
accepts them only before the first keyed row) and get ``seq`` in their id
order, which was their chain order. New rows are written with an HMAC
(``key_id``, ``mac``) and no place in the chain (``seq``, ``prev_hash``,
``hash`` NULL) until the sequencer chains them.
"""
from alembic import op
import sqlalchemy as sa


revision = "0002_audit"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
    # The old chain order is the id order: number it 1, 2, 3 ... without gaps.
    op.execute(
        "UPDATE audit_event SET seq = numbered.n FROM "
        "(SELECT id, row_number() OVER (ORDER BY id) AS n FROM audit_event) AS numbered "
        "WHERE audit_event.id = numbered.id"
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_audit_event_seq"), ["seq"])


def downgrade():
    # Rows chained with the key cannot go back to the unkeyed chain: refuse if there are any.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM audit_event WHERE key_id IS NOT NULL OR seq IS NULL")).scalar():
        raise RuntimeError("the audit log holds keyed rows; it cannot be downgraded to the unkeyed chain")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_event_seq"), type_="unique")
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("seq")
        batch_op.drop_column("mac")
        batch_op.drop_column("key_id")
