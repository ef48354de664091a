"""queue_log ingestion

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("callid", sa.String(length=150), nullable=False),
        sa.Column("queue", sa.String(length=80), nullable=False),
        sa.Column("agent", sa.String(length=80), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        *[sa.Column(f"data{i}", sa.String(length=200), nullable=False) for i in range(1, 6)],
    )
    op.create_index("ix_queue_log_time", "queue_log", ["time"])
    op.create_index("ix_queue_log_callid", "queue_log", ["callid"])
    op.create_index("ix_queue_log_event", "queue_log", ["event"])
    op.create_table(
        "queue_log_position",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("path", sa.String(length=400), nullable=False),
        sa.Column("inode", sa.Integer(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("queue_log_position")
    op.drop_table("queue_log")
