"""single-use races: at most one active screening rule set, at most one screening model on

Revision ID: 0005_race
Revises: 0004_audit
"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005_race"
down_revision = "0004_audit"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("screening_rule_set", schema=None) as batch_op:
        batch_op.create_index(
            "uq_screening_rule_set_one_active", ["status"], unique=True,
            postgresql_where=sa.text("status = 'active'"), sqlite_where=sa.text("status = 'active'"),
        )
    with op.batch_alter_table("screening_model", schema=None) as batch_op:
        batch_op.create_index(
            "uq_screening_model_one_enabled", ["enabled"], unique=True,
            postgresql_where=sa.text("enabled"), sqlite_where=sa.text("enabled"),
        )


def downgrade():
    with op.batch_alter_table("screening_model", schema=None) as batch_op:
        batch_op.drop_index("uq_screening_model_one_enabled")
    with op.batch_alter_table("screening_rule_set", schema=None) as batch_op:
        batch_op.drop_index("uq_screening_rule_set_one_active")
