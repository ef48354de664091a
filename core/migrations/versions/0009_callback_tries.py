"""callback tries: a number per placement, unique per task; IVR steps by time; phones by list

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

Before this, a try the queue refused reused its attempt number, so one task could hold two
``(callback_id, attempt)`` rows and reading it back crashed serve. Existing rows are
renumbered in the order they were made, then the pair is made unique.
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "callbacks", sa.Column("tries", sa.Integer(), nullable=False, server_default="0")
    )
    op.execute(
        """
        UPDATE callback_attempts SET attempt = (
            SELECT COUNT(*) FROM callback_attempts AS earlier
            WHERE earlier.callback_id = callback_attempts.callback_id
              AND earlier.id <= callback_attempts.id
        )
        """
    )
    op.execute(
        """
        UPDATE callbacks SET tries = (
            SELECT COUNT(*) FROM callback_attempts WHERE callback_attempts.callback_id = callbacks.id
        )
        """
    )
    op.create_index(
        "ux_callback_attempts_try", "callback_attempts", ["callback_id", "attempt"], unique=True
    )
    # IVR steps are pruned by age (storage.retention_ivr_steps_days).
    op.create_index("ix_ivr_steps_at", "ivr_steps", ["at"])
    # Imports look numbers up within a list.
    op.create_index("ix_contact_phones_list_number", "contact_phones", ["list_id", "number"])


def downgrade() -> None:
    op.drop_index("ix_contact_phones_list_number", "contact_phones")
    op.drop_index("ix_ivr_steps_at", "ivr_steps")
    op.drop_index("ux_callback_attempts_try", "callback_attempts")
    op.drop_column("callbacks", "tries")
