"""queue redirects

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_redirects",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queue", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("destination", sa.String(length=80), nullable=False),
        sa.Column("channel_id", sa.String(length=150), nullable=False),
        sa.Column("caller_number", sa.String(length=80), nullable=False),
    )
    op.create_index("ix_queue_redirects_at", "queue_redirects", ["at"])
    op.create_index("ix_queue_redirects_queue", "queue_redirects", ["queue"])


def downgrade() -> None:
    op.drop_table("queue_redirects")
