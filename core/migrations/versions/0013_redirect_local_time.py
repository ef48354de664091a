"""queue_redirects: the redirect's day, minute and ISO week in the centre's time zone

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03

So that the queue report counts redirects per interval like the visits. Rows stored before
are placed by ``telephonist report rebuild``.
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("queue_redirects") as batch:
        batch.add_column(sa.Column("local_day", sa.String(length=10), nullable=False, server_default=""))
        batch.add_column(sa.Column("local_minute", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("local_week", sa.String(length=8), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("queue_redirects") as batch:
        batch.drop_column("local_week")
        batch.drop_column("local_minute")
        batch.drop_column("local_day")
