"""dial_attempts: when the 2-second clock of an answered call started, and how long after it
the abandoned-call message began (the 2-second rule, as Asterisk measured it)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dial_attempts") as batch:
        batch.add_column(sa.Column("hold_from", sa.String(length=10), nullable=False, server_default=""))
        batch.add_column(sa.Column("message_after", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dial_attempts") as batch:
        batch.drop_column("message_after")
        batch.drop_column("hold_from")
