"""queue_calls.next_at: when the same caller next entered a queue (first-contact resolution)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

Kept up to date as visits are built (reports/facts.py); filled here for the visits already
stored: the earliest later inbound visit of the same caller.
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_calls") as batch:
        batch.add_column(sa.Column("next_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE queue_calls SET next_at = (SELECT min(later.entered_at) FROM queue_calls later"
        " WHERE later.caller = queue_calls.caller AND later.kind = 'inbound'"
        " AND later.entered_at > queue_calls.entered_at) WHERE caller <> ''"
    )


def downgrade() -> None:
    with op.batch_alter_table("queue_calls") as batch:
        batch.drop_column("next_at")
