"""contact lists, contacts with several numbers, do-not-call list

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contact_lists",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_contact_lists_name", "contact_lists", ["name"], unique=True)
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_contacts_list_id", "contacts", ["list_id"])
    op.create_table(
        "contact_phones",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_index("ix_contact_phones_contact_id", "contact_phones", ["contact_id"])
    op.create_index("ix_contact_phones_list_id", "contact_phones", ["list_id"])
    op.create_index("ix_contact_phones_number", "contact_phones", ["number"])
    op.create_table(
        "dnc",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.String(20), nullable=False),
        sa.Column("added_at", TS, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
    )
    op.create_index("ix_dnc_number", "dnc", ["number"], unique=True)


def downgrade() -> None:
    op.drop_table("dnc")
    op.drop_table("contact_phones")
    op.drop_table("contacts")
    op.drop_table("contact_lists")
