"""Database tables (sqlmodel). Every change here needs an alembic migration in
``core/migrations/versions`` (``make migration MSG=...``); the tests check they agree."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(t: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives naive ones back: they are UTC)."""
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


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
    at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True, nullable=False))
    entry: str = Field(max_length=40)
    menu: str = Field(default="", max_length=40)
    event: str = Field(max_length=20)
    digit: str = Field(default="", max_length=40)
    detail: str = Field(default="", max_length=120)
    version: int = 0


class CallbackRequest(SQLModel, table=True):
    """A customer to call back: asked for from the IVR or the queue (stored before they hear
    the confirmation), created from a missed or abandoned call or a voicemail, or scheduled.

    ``state``: pending (waiting for its time / a place), queued (its placeholder holds the
    customer's place in the queue), connected (an agent took it: the customer is being
    dialled), done, failed (no more attempts), cancelled.
    """

    __tablename__ = "callbacks"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True, max_length=32)
    queue: str = Field(max_length=40)
    source: str = Field(default="ivr", max_length=20)
    """ivr, queue (pressed a digit while waiting), abandoned, missed, voicemail, manual."""
    channel_id: str = Field(default="", max_length=150)
    line: str = Field(default="", max_length=40)
    requested_at: datetime = Field(
        default_factory=utcnow, sa_column=_ts(index=True, nullable=False)
    )
    requested_by: str = Field(default="", index=True, max_length=32)
    """The caller ID of the call that asked (IVR, queue): what the per-caller limit counts."""
    state: str = Field(default="pending", index=True, max_length=20)
    joined_at: datetime | None = Field(default=None, sa_column=_ts())
    """When the caller joined the queue: the place kept for them (callers who joined
    earlier are served first, later ones after)."""
    due_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    """Not before this time (scheduled callbacks, retries); empty: as soon as possible."""
    timezone: str = Field(default="", max_length=64)
    """The customer's time zone (scheduled callbacks are given in it)."""
    agent: str = Field(default="", max_length=40)
    """A named agent (scheduled callbacks); promoted to anyone after the configured delay."""
    note: str = Field(default="", max_length=200)
    attempts: int = 0
    """Tries that dialled the customer (counted against ``max_attempts``)."""
    tries: int = 0
    """Every placement, counted or not (the queue refused it, Originate failed...): the
    number of its ``callback_attempts`` row and of its placeholder channel. It only grows, so
    no two tries of one task ever share a number."""
    outcome: str = Field(default="", max_length=40)
    """The last attempt's outcome."""
    merged: int = 0
    """Further missed calls from this number folded into this task."""
    closed_at: datetime | None = Field(default=None, sa_column=_ts())
    closed_reason: str = Field(default="", max_length=80)


class CallbackAttempt(SQLModel, table=True):
    """One try at a callback: an agent connected, then the customer dialled."""

    __tablename__ = "callback_attempts"
    # One row per try, by construction: a try that was not placed keeps its own number.
    __table_args__ = (Index("ux_callback_attempts_try", "callback_id", "attempt", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    callback_id: int = Field(index=True)
    attempt: int
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    connected_at: datetime | None = Field(default=None, sa_column=_ts())
    """When an agent took it (before the customer is dialled)."""
    ended_at: datetime | None = Field(default=None, sa_column=_ts())
    agent: str = Field(default="", max_length=80)
    outcome: str = Field(default="", max_length=40)
    """answered, busy, no_answer, failed, agent_hung_up, not_placed:<QUEUESTATUS>."""
    dial_status: str = Field(default="", max_length=20)
    talk_seconds: int = 0


class VoicemailMessage(SQLModel, table=True):
    """A message left in a mailbox (noticed from app_voicemail's spool)."""

    __tablename__ = "voicemails"

    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(index=True, max_length=20)
    msg_id: str = Field(index=True, max_length=80)
    """app_voicemail's own message id (unique)."""
    caller_number: str = Field(default="", max_length=80)
    caller_name: str = Field(default="", max_length=80)
    received_at: datetime = Field(sa_column=_ts(index=True, nullable=False))
    duration: int = 0
    """Seconds of message."""
    file: str = Field(default="", max_length=400)
    state: str = Field(default="new", index=True, max_length=20)
    """new, done."""
    emailed_at: datetime | None = Field(default=None, sa_column=_ts())
    email_error: str = Field(default="", max_length=200)
    callback_id: int | None = None


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
    local_day: str = Field(default="", max_length=10)
    """``at`` in the centre's time zone (as ``queue_calls``): the reports' periods."""
    local_minute: int = 0
    local_week: str = Field(default="", max_length=8)


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


class QueueCall(SQLModel, table=True):
    """One caller's visit to a queue, as Asterisk's queue_log tells it (ENTERQUEUE to CONNECT
    and COMPLETE*, or to ABANDON / EXIT*). Built in the transaction that ingests the lines,
    so exactly once, also for calls that happened while serve was down; the reports
    aggregate these rows in SQL. ``local_day`` and ``local_minute`` place the entry in the
    centre's time zone (``timezone`` in the centre file) so that intervals, days, weeks and
    months group the same way on SQLite and PostgreSQL."""

    __tablename__ = "queue_calls"
    __table_args__ = (
        Index("ix_queue_calls_queue_day", "queue", "local_day"),
        Index("ix_queue_calls_caller", "caller", "entered_at"),  # FCR, the abandoned list
        Index("ux_queue_calls_visit", "callid", "queue", "entered_at", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    callid: str = Field(max_length=150)
    queue: str = Field(max_length=80)
    kind: str = Field(default="inbound", max_length=12)
    """``inbound``; ``callback`` (a callback's placeholder); ``outbound`` (a dialer call)."""
    caller: str = Field(default="", max_length=80)
    entered_at: datetime = Field(sa_column=_ts(index=True, nullable=False))
    local_day: str = Field(max_length=10)
    """YYYY-MM-DD of the entry in the centre's time zone."""
    local_minute: int = 0
    """Minutes since that local midnight (intervals of 15, 30, 60 minutes group on it)."""
    local_week: str = Field(default="", max_length=8)
    """ISO week of ``local_day``, ``2026-W49``."""
    position: int = 0
    """Place in the queue on entry."""
    outcome: str = Field(default="waiting", max_length=16)
    """waiting, answered, abandoned, timeout (waited too long), empty (nobody left to take
    it), key (left with a key: a callback request), transfer."""
    agent: str = Field(default="", max_length=80)
    wait: int = 0
    """Seconds waited (until answered, or until the caller left)."""
    left_position: int = 0
    """Place in the queue when the caller left without an answer."""
    answered_at: datetime | None = Field(default=None, sa_column=_ts())
    ended_at: datetime | None = Field(default=None, sa_column=_ts())
    talk: int = 0
    ended_by: str = Field(default="", max_length=12)
    """caller, agent or transfer."""
    wrap: int = 0
    """After-call work (wrap-up) seconds the agent had after this call."""
    surveyed: bool = False
    """The caller was asked to rate the call (the agent hung up first, the queue has a survey)."""
    csat: int | None = None
    """Their score, 1-5 (None: not asked, or no valid key)."""
    next_at: datetime | None = Field(default=None, sa_column=_ts())
    """When the same caller (customer key) next entered a queue (an inbound visit): kept as
    visits are built, so first-contact resolution is one scan, not a search per call."""


class ReportSend(SQLModel, table=True):
    """One due sending of a scheduled report: stored before the e-mail goes out, so a send
    that fails is retried and one that went out is never sent again."""

    __tablename__ = "report_sends"
    __table_args__ = (Index("ux_report_sends_due", "name", "due_at", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=40)
    due_at: datetime = Field(sa_column=_ts(nullable=False))
    state: str = Field(default="pending", max_length=12)
    """pending (not sent yet, or to be tried again), sent, failed (gave up)."""
    tries: int = 0
    next_try_at: datetime | None = Field(default=None, sa_column=_ts())
    last_error: str = Field(default="", max_length=200)
    sent_at: datetime | None = Field(default=None, sa_column=_ts())


class CelEvent(SQLModel, table=True):
    """A channel event (Asterisk CEL) of a call that has not ended yet. When the call's
    ``LINKEDID_END`` is ingested its :class:`PbxCall` is built from these rows and they are
    deleted, in the same transaction."""

    __tablename__ = "cel_events"

    id: int | None = Field(default=None, primary_key=True)
    linkedid: str = Field(index=True, max_length=150)
    uniqueid: str = Field(max_length=150)
    event: str = Field(max_length=20)
    at: datetime = Field(sa_column=_ts(nullable=False))
    channel: str = Field(default="", max_length=150)
    caller_number: str = Field(default="", max_length=80)
    caller_name: str = Field(default="", max_length=80)
    exten: str = Field(default="", max_length=80)
    context: str = Field(default="", max_length=80)
    peer: str = Field(default="", max_length=150)
    extra: str = Field(default="", max_length=400)


class PbxCall(SQLModel, table=True):
    """One call as Asterisk saw it (all channels sharing a linkedid), from its channel events:
    the true answer and end times, the hang-up cause and who hung up. Built exactly once when
    the call's ``LINKEDID_END`` is ingested (also when the call ended while serve was down).
    ``channel`` is the call's first channel: the caller of an inbound call, the called party
    of an originated one; its uniqueid is the linkedid (and the queue_log's callid, and the
    Stasis channel id in ``calls``)."""

    __tablename__ = "pbx_calls"

    id: int | None = Field(default=None, primary_key=True)
    linkedid: str = Field(max_length=150, unique=True)
    channel: str = Field(default="", max_length=150)
    caller_number: str = Field(default="", max_length=80)
    caller_name: str = Field(default="", max_length=80)
    exten: str = Field(default="", max_length=80)
    context: str = Field(default="", max_length=80)
    started_at: datetime = Field(sa_column=_ts(index=True, nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=_ts())
    connected_at: datetime | None = Field(default=None, sa_column=_ts())
    """When the first channel was first bridged with another party."""
    ended_at: datetime = Field(sa_column=_ts(nullable=False))
    """When the first channel hung up."""
    talk: int = 0
    """Seconds the first channel spent bridged with another party."""
    peer: str = Field(default="", max_length=150)
    """The last channel it was bridged with (an agent's phone, a trunk)."""
    hangup_cause: int = 0
    """Q.850 cause of the first channel's hang-up (16 normal clearing, 17 busy, ...; 0 when
    a SIP caller hung up with a plain BYE)."""
    hangup_source: str = Field(default="", max_length=150)
    """The channel (or ``dialplan/builtin``...) Asterisk names as having hung up."""
    hung_up_by: str = Field(default="", max_length=8)
    """``caller`` (the first channel), ``peer`` (another channel of the call) or ``pbx``."""
    dialstatus: str = Field(default="", max_length=20)
    channels: int = 1


class QueueLogPosition(SQLModel, table=True):
    """How far the queue_log file has been read (committed with the rows: exactly once)."""

    __tablename__ = "queue_log_position"

    id: int | None = Field(default=None, primary_key=True)
    path: str = Field(max_length=400)
    inode: int = 0
    offset: int = 0


class ContactList(SQLModel, table=True):
    __tablename__ = "contact_lists"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=60)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class Contact(SQLModel, table=True):
    """A person to call, in a list: several numbers, a name, tags, custom fields."""

    __tablename__ = "contacts"

    id: int | None = Field(default=None, primary_key=True)
    list_id: int = Field(index=True)
    name: str = Field(default="", max_length=120)
    timezone: str = Field(default="", max_length=64)
    """The contact's time zone (from the number, or the file's override column)."""
    tags: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    """JSON list."""
    fields: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    """JSON object of the file's other columns."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class ContactPhone(SQLModel, table=True):
    __tablename__ = "contact_phones"
    # An import looks numbers up within a list: without this index the database scans the
    # whole list for each batch (imports slowed down as the list grew).
    __table_args__ = (Index("ix_contact_phones_list_number", "list_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(index=True)
    list_id: int = Field(index=True)
    number: str = Field(index=True, max_length=20)
    """E.164 (``+33142685300``)."""
    position: int = 0
    """0: the first number to call."""


class DncEntry(SQLModel, table=True):
    """A number that must never be called (checked at dial time)."""

    __tablename__ = "dnc"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(index=True, unique=True, max_length=20)
    added_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))
    source: str = Field(default="", max_length=200)


class Campaign(SQLModel, table=True):
    """An outbound campaign over a contact list, its agents in a queue."""

    __tablename__ = "campaigns"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=60)
    list_name: str = Field(max_length=60)
    queue: str = Field(max_length=40)
    mode: str = Field(default="predictive", max_length=20)
    """preview, progressive or predictive."""
    state: str = Field(default="paused", index=True, max_length=20)
    """running, paused, stopped."""
    trunk: str = Field(max_length=40)
    caller_id: str = Field(default="", max_length=20)
    window_start: str = Field(default="09:00", max_length=5)
    window_end: str = Field(default="20:00", max_length=5)
    days: str = Field(default="mon-fri", max_length=40)
    default_timezone: str = Field(default="UTC", max_length=64)
    max_attempts: int = 3
    retry: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    """JSON: outcome -> seconds before the next try (busy, no_answer, machine, callback...)."""
    jurisdiction: str = Field(default="US", max_length=4)
    abandon_cap: float = 0.03
    ring_seconds: int = 20
    amd: bool = False
    amd_false_positive: float = 0.0
    message: str = Field(default="", max_length=80)
    """The sound an abandoned call hears (``custom/...``)."""
    message_text: str = Field(default="", max_length=400)
    """What that sound says when telephonist spoke it (``--message-text``): kept to speak it
    again if the sound is lost (a rebuilt sandbox)."""
    """The recorded message a live answer hears when no agent is free within 2 s."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=_ts(nullable=False))


class CampaignLead(SQLModel, table=True):
    """A contact's progress in a campaign."""

    __tablename__ = "campaign_leads"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(index=True)
    contact_id: int = Field(index=True)
    state: str = Field(default="new", index=True, max_length=20)
    """new, retry, held (an agent previews it), dialing, done, dnc, exhausted, skipped."""
    attempts: int = 0
    next_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    """When it is due (retry), or when an agent's hold on it ends (held)."""
    last_outcome: str = Field(default="", max_length=20)
    disposition: str = Field(default="", max_length=40)
    held_by: str = Field(default="", max_length=40)
    """The agent previewing it (preview mode), until ``next_at``."""
    skip_reason: str = Field(default="", max_length=80)
    """Why an agent skipped it (``campaign next --skip --reason``): never dialled then."""


DIALER_CALL_PREFIX = "dial-"
"""The unique id (and queue_log call id) of every channel the dialer places: ``dial-<attempt>``."""


def is_dialer_call(callid: str) -> bool:
    """Whether a channel / queue_log call is one the dialer placed.

    >>> is_dialer_call("dial-42"), is_dialer_call("1733500000.17")
    (True, False)
    """
    return callid.startswith(DIALER_CALL_PREFIX)


def dialer_call_id(attempt_id: int) -> str:
    """The channel id the dialer gives the call of attempt ``attempt_id``.

    >>> dialer_call_id(42)
    'dial-42'
    """
    return f"{DIALER_CALL_PREFIX}{attempt_id}"


class DialAttempt(SQLModel, table=True):
    """One call placed by the dialer (stored before the Originate)."""

    __tablename__ = "dial_attempts"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(index=True)
    lead_id: int = Field(index=True)
    number: str = Field(max_length=20)
    attempt: int
    started_at: datetime = Field(default_factory=utcnow, sa_column=_ts(index=True, nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=_ts())
    connected_at: datetime | None = Field(default=None, sa_column=_ts())
    ended_at: datetime | None = Field(default=None, sa_column=_ts())
    outcome: str = Field(default="", max_length=20)
    """answered, abandoned, busy, no_answer, failed, machine, dnc_blocked."""
    reason: str = Field(default="", max_length=40)
    """Asterisk's own words: OriginateResponse reason, DIALSTATUS, QUEUESTATUS."""
    agent: str = Field(default="", max_length=80)
    amd_status: str = Field(default="", max_length=10)
    """app_amd's verdict (AMD campaigns): HUMAN, MACHINE or NOTSURE (empty: AMD not run)."""
    amd_cause: str = Field(default="", max_length=40)
    """Why: app_amd's AMDCAUSE (``LONGGREETING-1600-1500``, ``HUMAN-300-800``...)."""
    hold_from: str = Field(default="", max_length=10)
    """When the 2-second clock of the answered call started: ``answer`` (the called party
    picked up), or ``amd`` (AMD heard the end of their greeting)."""
    message_after: float | None = None
    """Abandoned calls: seconds (to the millisecond, Asterisk's clock) from the start of the
    2-second clock to the start of the abandoned-call message."""
