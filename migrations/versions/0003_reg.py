"""registration proves the e-mail; single-use e-mail tokens; previous staff sign-in

Revision ID: 0003_reg
Revises: 0002_signin
"""
import sqlalchemy as sa
from alembic import op

import portal.orm

# revision identifiers, used by Alembic.
revision = '0003_reg'
down_revision = '0002_signin'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('email_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('token_digest', sa.String(length=64), nullable=False),
    sa.Column('guardian_id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=True),
    sa.Column('enrolment_code_id', sa.Integer(), nullable=True),
    sa.Column('relationship', sa.String(length=20), nullable=True),
    sa.Column('created_at', portal.orm.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', portal.orm.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', portal.orm.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['child_id'], ['child.id'], name=op.f('fk_email_token_child_id_child'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['enrolment_code_id'], ['enrolment_code.id'], name=op.f('fk_email_token_enrolment_code_id_enrolment_code'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['guardian_id'], ['guardian.id'], name=op.f('fk_email_token_guardian_id_guardian'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_token')),
    sa.UniqueConstraint('token_digest', name=op.f('uq_email_token_token_digest'))
    )
    with op.batch_alter_table('email_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_token_guardian_id'), ['guardian_id'], unique=False)

    with op.batch_alter_table('guardian', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_confirmed_at', portal.orm.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_login_at', portal.orm.UTCDateTime(timezone=True), nullable=True))

    # Accounts that exist before this change keep working: they count as
    # confirmed (no family is locked out on deployment). New accounts prove
    # their address from now on.
    op.execute(
        "UPDATE guardian SET email_confirmed_at = COALESCE(registered_at, created_at) "
        "WHERE password_hash IS NOT NULL AND email_confirmed_at IS NULL"
    )


def downgrade():
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_column('previous_login_at')
    with op.batch_alter_table('guardian', schema=None) as batch_op:
        batch_op.drop_column('email_confirmed_at')
    with op.batch_alter_table('email_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_token_guardian_id'))
    op.drop_table('email_token')
