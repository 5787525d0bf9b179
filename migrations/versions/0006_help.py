"""a help request survives consent events; the steward's release of withheld records; purge causes

- survey_help_alert.response_id: ON DELETE SET NULL (was CASCADE), so deleting
  check-in answers (a consent purge) never deletes a child's request for help;
- data_request.withheld_released_at / withheld_released_by_staff_id: the data
  steward released what a disclosure withholds from a guardian;
- consent_pending_purge.cause: withdrawal or lapse.

Revision ID: 0006_help
Revises: 0005_race
"""
import sqlalchemy as sa
from alembic import op

import portal.orm

revision = "0006_help"
down_revision = "0005_race"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("survey_help_alert", schema=None) as batch_op:
        batch_op.drop_constraint("fk_survey_help_alert_response_id_survey_response", type_="foreignkey")
        batch_op.create_foreign_key(
            "fk_survey_help_alert_response_id_survey_response", "survey_response", ["response_id"], ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("data_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("withheld_released_at", portal.orm.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withheld_released_by_staff_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_data_request_withheld_released_by_staff_id_staff", "staff", ["withheld_released_by_staff_id"], ["id"]
        )
    with op.batch_alter_table("consent_pending_purge", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "cause",
                sa.Enum("withdrawal", "lapse", name="purgecause", native_enum=False, length=20),
                nullable=False,
                server_default="withdrawal",
            )
        )


def downgrade():
    with op.batch_alter_table("consent_pending_purge", schema=None) as batch_op:
        batch_op.drop_column("cause")
    with op.batch_alter_table("data_request", schema=None) as batch_op:
        batch_op.drop_constraint("fk_data_request_withheld_released_by_staff_id_staff", type_="foreignkey")
        batch_op.drop_column("withheld_released_by_staff_id")
        batch_op.drop_column("withheld_released_at")
    with op.batch_alter_table("survey_help_alert", schema=None) as batch_op:
        batch_op.drop_constraint("fk_survey_help_alert_response_id_survey_response", type_="foreignkey")
        batch_op.create_foreign_key(
            "fk_survey_help_alert_response_id_survey_response", "survey_response", ["response_id"], ["id"],
            ondelete="CASCADE",
        )
