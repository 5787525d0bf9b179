"""sign-in: delays instead of lockout, card revocation and last use

Revision ID: 0002_signin
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import portal.orm

revision = "0002_signin"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    # A lock of 15 minutes becomes a delay of at most 30 seconds: the column
    # now means "no attempt is considered before"; old locks are dropped.
    for table in ("child", "guardian", "staff"):
        op.execute(sa.text(f"UPDATE {table} SET locked_until = NULL, failed_logins = 0"))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("locked_until", new_column_name="login_not_before")
            batch.add_column(sa.Column("trusted_not_before", portal.orm.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("child") as batch:
        batch.add_column(sa.Column("card_last_used_at", portal.orm.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("card_revoked_at", portal.orm.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("child") as batch:
        batch.drop_column("card_revoked_at")
        batch.drop_column("card_last_used_at")
    for table in ("child", "guardian", "staff"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("trusted_not_before")
            batch.alter_column("login_not_before", new_column_name="locked_until")
