"""pbx_calls and cel_events: true call records from Asterisk's channel events (CEL)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03

``cel_events`` holds the events of calls still in progress; when a call's LINKEDID_END is
ingested its ``pbx_calls`` row is built and its events deleted, in one transaction.
"""
import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cel_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("linkedid", sa.String(length=150), nullable=False),
        sa.Column("uniqueid", sa.String(length=150), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=150), nullable=False),
        sa.Column("caller_number", sa.String(length=80), nullable=False),
        sa.Column("caller_name", sa.String(length=80), nullable=False),
        sa.Column("exten", sa.String(length=80), nullable=False),
        sa.Column("context", sa.String(length=80), nullable=False),
        sa.Column("peer", sa.String(length=150), nullable=False),
        sa.Column("extra", sa.String(length=400), nullable=False),
    )
    op.create_index("ix_cel_events_linkedid", "cel_events", ["linkedid"])
    op.create_table(
        "pbx_calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("linkedid", sa.String(length=150), nullable=False, unique=True),
        sa.Column("channel", sa.String(length=150), nullable=False),
        sa.Column("caller_number", sa.String(length=80), nullable=False),
        sa.Column("caller_name", sa.String(length=80), nullable=False),
        sa.Column("exten", sa.String(length=80), nullable=False),
        sa.Column("context", sa.String(length=80), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("talk", sa.Integer(), nullable=False),
        sa.Column("peer", sa.String(length=150), nullable=False),
        sa.Column("hangup_cause", sa.Integer(), nullable=False),
        sa.Column("hangup_source", sa.String(length=150), nullable=False),
        sa.Column("hung_up_by", sa.String(length=8), nullable=False),
        sa.Column("dialstatus", sa.String(length=20), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
    )
    op.create_index("ix_pbx_calls_started_at", "pbx_calls", ["started_at"])


def downgrade() -> None:
    op.drop_table("pbx_calls")
    op.drop_table("cel_events")
