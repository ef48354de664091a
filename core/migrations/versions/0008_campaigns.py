"""campaigns, their leads and every dial attempt

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("list_name", sa.String(60), nullable=False),
        sa.Column("queue", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("trunk", sa.String(40), nullable=False),
        sa.Column("caller_id", sa.String(20), nullable=False),
        sa.Column("window_start", sa.String(5), nullable=False),
        sa.Column("window_end", sa.String(5), nullable=False),
        sa.Column("days", sa.String(40), nullable=False),
        sa.Column("default_timezone", sa.String(64), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry", sa.Text(), nullable=False),
        sa.Column("jurisdiction", sa.String(4), nullable=False),
        sa.Column("abandon_cap", sa.Float(), nullable=False),
        sa.Column("ring_seconds", sa.Integer(), nullable=False),
        sa.Column("amd", sa.Boolean(), nullable=False),
        sa.Column("amd_false_positive", sa.Float(), nullable=False),
        sa.Column("message", sa.String(80), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_campaigns_name", "campaigns", ["name"], unique=True)
    op.create_index("ix_campaigns_state", "campaigns", ["state"])
    op.create_table(
        "campaign_leads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", TS, nullable=True),
        sa.Column("last_outcome", sa.String(20), nullable=False),
        sa.Column("disposition", sa.String(40), nullable=False),
    )
    op.create_index("ix_campaign_leads_campaign_id", "campaign_leads", ["campaign_id"])
    op.create_index("ix_campaign_leads_contact_id", "campaign_leads", ["contact_id"])
    op.create_index("ix_campaign_leads_state", "campaign_leads", ["state"])
    op.create_index("ix_campaign_leads_next_at", "campaign_leads", ["next_at"])
    op.create_table(
        "dial_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("answered_at", TS, nullable=True),
        sa.Column("connected_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("agent", sa.String(80), nullable=False),
    )
    op.create_index("ix_dial_attempts_campaign_id", "dial_attempts", ["campaign_id"])
    op.create_index("ix_dial_attempts_lead_id", "dial_attempts", ["lead_id"])
    op.create_index("ix_dial_attempts_started_at", "dial_attempts", ["started_at"])


def downgrade() -> None:
    op.drop_table("dial_attempts")
    op.drop_table("campaign_leads")
    op.drop_table("campaigns")
