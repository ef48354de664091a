"""agent logins and pauses

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent_pauses",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agent", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
    )
    op.create_index("ix_agent_pauses_agent", "agent_pauses", ["agent"])
    op.create_index("ix_agent_pauses_started_at", "agent_pauses", ["started_at"])
    op.create_table(
        "agent_logins",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agent", sa.String(length=40), nullable=False),
        sa.Column("queues", sa.String(length=400), nullable=False),
        sa.Column("logged_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("logged_out_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_agent_logins_agent", "agent_logins", ["agent"])
    op.create_index("ix_agent_logins_logged_in_at", "agent_logins", ["logged_in_at"])


def downgrade() -> None:
    op.drop_table("agent_logins")
    op.drop_table("agent_pauses")
