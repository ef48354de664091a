"""Alembic environment. telephonist runs migrations itself (``telephonist db upgrade`` and at
``serve`` start-up) by passing an open connection in ``config.attributes['connection']``."""

from alembic import context
from sqlmodel import SQLModel

import telephonist.core.models  # noqa: F401 - registers the tables on SQLModel.metadata

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through telephonist (telephonist db upgrade)")
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
