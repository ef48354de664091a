"""queue_calls: one caller's visit to a queue, built from the queue_log (reports)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

Filled as queue_log lines are ingested; ``telephonist report rebuild`` fills it from the
queue_log lines already stored.
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("callid", sa.String(length=150), nullable=False),
        sa.Column("queue", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("caller", sa.String(length=80), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("local_day", sa.String(length=10), nullable=False),
        sa.Column("local_minute", sa.Integer(), nullable=False),
        sa.Column("local_week", sa.String(length=8), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("agent", sa.String(length=80), nullable=False),
        sa.Column("wait", sa.Integer(), nullable=False),
        sa.Column("left_position", sa.Integer(), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("talk", sa.Integer(), nullable=False),
        sa.Column("ended_by", sa.String(length=12), nullable=False),
        sa.Column("wrap", sa.Integer(), nullable=False),
        sa.Column("surveyed", sa.Boolean(), nullable=False),
        sa.Column("csat", sa.Integer(), nullable=True),
    )
    op.create_index("ix_queue_calls_entered_at", "queue_calls", ["entered_at"])
    op.create_index("ix_queue_calls_queue_day", "queue_calls", ["queue", "local_day"])
    op.create_index("ix_queue_calls_caller", "queue_calls", ["caller", "entered_at"])
    op.create_index(
        "ux_queue_calls_visit", "queue_calls", ["callid", "queue", "entered_at"], unique=True
    )


def downgrade() -> None:
    op.drop_table("queue_calls")
