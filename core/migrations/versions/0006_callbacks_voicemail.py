"""callbacks executed (attempts, schedule, place in queue) and voicemail messages

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("callbacks") as t:
        t.add_column(sa.Column("joined_at", TS, nullable=True))
        t.add_column(sa.Column("due_at", TS, nullable=True))
        t.add_column(sa.Column("timezone", sa.String(64), nullable=False, server_default=""))
        t.add_column(sa.Column("agent", sa.String(40), nullable=False, server_default=""))
        t.add_column(sa.Column("note", sa.String(200), nullable=False, server_default=""))
        t.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        t.add_column(sa.Column("outcome", sa.String(40), nullable=False, server_default=""))
        t.add_column(sa.Column("merged", sa.Integer(), nullable=False, server_default="0"))
        t.add_column(sa.Column("closed_at", TS, nullable=True))
        t.add_column(sa.Column("closed_reason", sa.String(80), nullable=False, server_default=""))
    op.create_index("ix_callbacks_due_at", "callbacks", ["due_at"])
    op.create_table(
        "callback_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("connected_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("agent", sa.String(80), nullable=False),
        sa.Column("outcome", sa.String(40), nullable=False),
        sa.Column("dial_status", sa.String(20), nullable=False),
        sa.Column("talk_seconds", sa.Integer(), nullable=False),
    )
    op.create_index("ix_callback_attempts_callback_id", "callback_attempts", ["callback_id"])
    op.create_table(
        "voicemails",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mailbox", sa.String(20), nullable=False),
        sa.Column("msg_id", sa.String(80), nullable=False),
        sa.Column("caller_number", sa.String(80), nullable=False),
        sa.Column("caller_name", sa.String(80), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("duration", sa.Integer(), nullable=False),
        sa.Column("file", sa.String(400), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("emailed_at", TS, nullable=True),
        sa.Column("email_error", sa.String(200), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_voicemails_mailbox", "voicemails", ["mailbox"])
    op.create_index("ix_voicemails_msg_id", "voicemails", ["msg_id"])
    op.create_index("ix_voicemails_received_at", "voicemails", ["received_at"])
    op.create_index("ix_voicemails_state", "voicemails", ["state"])


def downgrade() -> None:
    op.drop_table("voicemails")
    op.drop_table("callback_attempts")
    op.drop_index("ix_callbacks_due_at", "callbacks")
    with op.batch_alter_table("callbacks") as t:
        for name in (
            "joined_at", "due_at", "timezone", "agent", "note", "attempts", "outcome", "merged",
            "closed_at", "closed_reason",
        ):  # fmt: skip
            t.drop_column(name)
