"""callbacks: the caller number that asked (per-caller request limit)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

Explicit requests (IVR, queue) are limited per caller number (``callbacks.requests_per_caller``):
the asking caller's number is kept with the task. Tasks stored before have none and are not
counted.
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "callbacks",
        sa.Column("requested_by", sa.String(length=32), nullable=False, server_default=""),
    )
    op.create_index("ix_callbacks_requested_by", "callbacks", ["requested_by"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_requested_by", table_name="callbacks")
    op.drop_column("callbacks", "requested_by")
