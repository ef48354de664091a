"""campaign_leads: the agent holding a previewed lead, and why a lead was skipped

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaign_leads") as batch:
        batch.add_column(sa.Column("held_by", sa.String(length=40), nullable=False, server_default=""))
        batch.add_column(sa.Column("skip_reason", sa.String(length=80), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("campaign_leads") as batch:
        batch.drop_column("skip_reason")
        batch.drop_column("held_by")
