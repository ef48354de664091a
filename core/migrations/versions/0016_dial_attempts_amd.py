"""dial_attempts: app_amd's verdict and its cause

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dial_attempts") as batch:
        batch.add_column(sa.Column("amd_status", sa.String(length=10), nullable=False, server_default=""))
        batch.add_column(sa.Column("amd_cause", sa.String(length=40), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("dial_attempts") as batch:
        batch.drop_column("amd_cause")
        batch.drop_column("amd_status")
