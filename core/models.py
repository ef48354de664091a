"""Database tables (sqlmodel). Every change here needs an alembic migration in
``core/migrations/versions`` (``make migration MSG=...``); the tests check they agree."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(index: bool = False, nullable: bool = True) -> Column:
    return Column(DateTime(timezone=True), index=index, nullable=nullable)


class Call(SQLModel, table=True):
    """One call that reached telephonist (one Stasis channel)."""

    __tablename__ = "calls"

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(index=True, unique=True, max_length=150)
    line: str = Field(max_length=40)
    route: str = Field(max_length=40)
    caller_number: str = Field(default="", max_length=80)
    caller_name: str = Field(default="", max_length=80)
    dialed: str = Field(default="", max_length=80)
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True, nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=_ts())
    ended_at: datetime | None = Field(default=None, sa_column=_ts())
    outcome: str | None = Field(default=None, max_length=40)


class OutboxEvent(SQLModel, table=True):
    """An event to publish on MQTT, written in the same transaction as the change it reports.
    ``id`` gives the delivery order; ``sent_at`` is set once the broker acknowledged it."""

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=255)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=_ts(index=True))


class IvrStep(SQLModel, table=True):
    """One step of a caller's journey through the menus."""

    __tablename__ = "ivr_steps"

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(index=True, max_length=150)
    seq: int
    at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    entry: str = Field(max_length=40)
    menu: str = Field(default="", max_length=40)
    event: str = Field(max_length=20)
    digit: str = Field(default="", max_length=40)
    detail: str = Field(default="", max_length=120)
    version: int = 0


class CallbackRequest(SQLModel, table=True):
    """A caller asked to be called back (stored before they hear the confirmation)."""

    __tablename__ = "callbacks"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True, max_length=32)
    queue: str = Field(max_length=40)
    source: str = Field(default="ivr", max_length=20)
    channel_id: str = Field(default="", max_length=150)
    line: str = Field(default="", max_length=40)
    requested_at: datetime = Field(
        default_factory=utcnow, sa_column=_ts(index=True, nullable=False)
    )
    state: str = Field(default="pending", index=True, max_length=20)


class QueueRedirect(SQLModel, table=True):
    """A caller a queue could not serve, and where telephonist sent them."""

    __tablename__ = "queue_redirects"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True, nullable=False))
    queue: str = Field(index=True, max_length=40)
    reason: str = Field(max_length=20)
    """overflow, empty, no_answer, after_hours"""
    detail: str = Field(default="", max_length=80)
    status: str = Field(default="", max_length=20)
    """app_queue's QUEUESTATUS (FULL, TIMEOUT, JOINEMPTY...), empty for after hours."""
    destination: str = Field(default="", max_length=80)
    channel_id: str = Field(default="", max_length=150)
    caller_number: str = Field(default="", max_length=80)


class AgentPause(SQLModel, table=True):
    """One pause of an agent, with its reason and (once over) its duration."""

    __tablename__ = "agent_pauses"

    id: int | None = Field(default=None, primary_key=True)
    agent: str = Field(index=True, max_length=40)
    reason: str = Field(default="", max_length=40)
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True, nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=_ts())
    seconds: float | None = None


class AgentLogin(SQLModel, table=True):
    """One login of an agent to their queues."""

    __tablename__ = "agent_logins"

    id: int | None = Field(default=None, primary_key=True)
    agent: str = Field(index=True, max_length=40)
    queues: str = Field(default="", max_length=400)
    logged_in_at: datetime = Field(
        default_factory=utcnow, sa_column=_ts(index=True, nullable=False)
    )
    logged_out_at: datetime | None = Field(default=None, sa_column=_ts())


class QueueLogEntry(SQLModel, table=True):
    """One line of Asterisk's queue_log (what report tools read), kept in the database."""

    __tablename__ = "queue_log"

    id: int | None = Field(default=None, primary_key=True)
    time: datetime = Field(sa_column=_ts(index=True, nullable=False))
    callid: str = Field(index=True, max_length=150)
    queue: str = Field(max_length=80)
    agent: str = Field(max_length=80)
    event: str = Field(index=True, max_length=40)
    data1: str = Field(default="", max_length=200)
    data2: str = Field(default="", max_length=200)
    data3: str = Field(default="", max_length=200)
    data4: str = Field(default="", max_length=200)
    data5: str = Field(default="", max_length=200)


class QueueLogPosition(SQLModel, table=True):
    """How far the queue_log file has been read (committed with the rows: exactly once)."""

    __tablename__ = "queue_log_position"

    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(max_length=400)
    inode: int = 0
    offset: int = 0
