"""The centre's definitions: what callers can dial and what exists to route them to.

- ``lines``: numbers callers dial, each handed to a telephonist route (Stasis argument), with
  the fallback the dialplan uses when telephonist is not there to take the call;
- ``queues``, ``extensions`` (agents' and staff phones), ``mailboxes``, ``trunks``: the
  destinations menus and queues can send a caller to (rendered into the Asterisk config);
- ``ivr``: the menu file (see ``ivr/``), whose entry points become lines too.

Everything here ends up in dialplan or config files, so every field is validated against a
strict pattern: nothing that could inject dialplan syntax gets through.
"""

from __future__ import annotations

import re
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from telephonist.core.hours import check_hours, check_timezone, parse_days, parse_hhmm
from telephonist.core.numbers import DialFormat, check_region
from telephonist.core.yamlfile import DefinitionError, load_raw, read_definition, validate

DIGITS = r"^[0-9]{1,20}$"
DIALSTRING = r"^\+?[0-9]{1,20}$"
NAME = r"^[a-z][a-z0-9_-]{0,39}$"
LABEL = r"^[A-Za-z0-9 .'_-]{0,60}$"
FALLBACK = r"^(hangup|busy|playback|queue:[a-z][a-z0-9_-]{0,39}|voicemail:[0-9]{1,20})$"


class CentreError(DefinitionError):
    """A bad centre definition: the message names the file, line and field."""


class _Def(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Line(_Def):
    """One number callers dial (a DID or an internal number)."""

    number: str = Field(pattern=r"^[0-9*#+]{1,32}$")
    name: str = Field(pattern=NAME)
    route: str = Field(default="demo", pattern=NAME)
    """Which telephonist controller takes the call (passed to Stasis as its first argument)."""
    queue: str | None = Field(default=None, pattern=NAME)
    """With ``route: queue``: the queue the line's callers go to."""
    answer: Literal["immediate", "on_pickup"] = "immediate"
    """``immediate``: callers are answered at once and hear prompts and hold music.
    ``on_pickup``: they hear ringing and are answered (and pay) only when an agent answers."""
    fallback: str = Field(default="playback", pattern=FALLBACK)
    """What the dialplan does when telephonist is down: ``playback`` (a message), ``busy``,
    ``hangup``, ``queue:<name>`` or ``voicemail:<box>``."""


DESTINATION = (
    r"^(hangup|queue:[a-z][a-z0-9_-]{0,39}|voicemail:[0-9]{1,20}|extension:[0-9]{2,8}"
    r"|menu:[a-z][a-z0-9_-]{0,39}|outside:\+?[0-9]{1,20}@[a-z][a-z0-9_-]{0,39}"
    r"|callback:[a-z][a-z0-9_-]{0,39})$"
)
"""Where a caller is sent: ``queue:sales``, ``voicemail:100``, ``extension:1001``,
``menu:main``, ``outside:0123456789@office``, ``callback:support`` or ``hangup``."""

MemberCondition = Literal[
    "paused", "penalty", "inuse", "ringing", "unavailable", "invalid", "unknown", "wrapup"
]


class Redirects(_Def):
    """What happens to a caller the queue cannot serve (each stored with its reason)."""

    overflow: str | None = Field(default=None, pattern=DESTINATION)
    """The queue is full (``maxlen``) or the caller waited ``max_wait`` seconds."""
    empty: str | None = Field(default=None, pattern=DESTINATION)
    """No agent logged in, or all paused/unavailable: on arrival or while waiting."""
    no_answer: str | None = Field(default=None, pattern=DESTINATION)
    """Agents rang and none answered (the queue gave up: app_queue CONTINUE)."""
    after_hours: str | None = Field(default=None, pattern=DESTINATION)
    """Outside the queue's opening hours."""


class Queue(_Def):
    name: str = Field(pattern=NAME)
    strategy: Literal[
        "ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered", "linear",
        "wrandom",
    ] = "ringall"  # fmt: skip
    timeout: int = Field(default=15, ge=1, le=600)
    """Seconds an agent's phone rings before the next try."""
    retry: int = Field(default=5, ge=0, le=600)
    """Seconds before agents are rung again after a round with no answer."""
    wrapup: int = Field(default=0, ge=0, le=3600)
    """Seconds an agent rests after a call before the next one."""
    maxlen: int = Field(default=0, ge=0)
    """Callers waiting at most (0: no limit); one more is an overflow."""
    max_wait: int = Field(default=0, ge=0, le=86400)
    """Seconds a caller waits at most (0: no limit); then an overflow."""
    ring_attempts: int = Field(default=0, ge=0, le=100)
    """After this many agents rang for a caller without answering: a *no answer* redirect
    (0: keep trying until max_wait)."""
    refuse_join_when: tuple[MemberCondition, ...] = ("unavailable", "invalid", "unknown")
    """A caller does not join when every agent is in one of these states (app_queue
    ``joinempty``): an *empty queue* redirect instead."""
    leave_when: tuple[MemberCondition, ...] = ("unavailable", "invalid", "unknown")
    """Waiting callers leave when every agent is in one of these states (``leavewhenempty``)."""
    announce_position: Literal["yes", "no", "limit", "more"] = "no"
    announce_holdtime: Literal["yes", "no", "once"] = "no"
    announce_frequency: int = Field(default=0, ge=0)
    periodic_announce: tuple[str, ...] = ()
    periodic_announce_frequency: int = Field(default=0, ge=0)
    music_class: str = Field(default="default", pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    service_level: int = Field(default=20, ge=1, le=3600)
    """Seconds within which a call counts as answered in service level."""
    weight: int = Field(default=0, ge=0, le=100)
    autopause: Literal["no", "yes", "all"] = "no"
    ring_in_use: bool = False
    timezone: str | None = None
    hours: dict[str, str] | None = None
    """Opening hours like an IVR entry's (``{"mon-fri": "08:00-18:00"}``); omitted: always."""
    holidays: tuple[date, ...] = ()
    redirects: Redirects = Field(default_factory=Redirects)
    survey: Survey | None = None
    """A post-call survey (CSAT) for this queue's callers; absent: none."""
    callback_digit: str | None = Field(default=None, pattern=r"^[0-9*#]$")
    """A digit a waiting caller presses to leave the queue and be called back, keeping
    their place (app_queue's ``context``). Empty: no callback offer while waiting."""

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        return check_hours(v)  # the same opening-hours language as IVR entries

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return check_timezone(v)

    @field_validator("periodic_announce")
    @classmethod
    def _prompts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            if not re.fullmatch(r"[a-z0-9][a-z0-9_/-]{0,79}", p):
                raise ValueError(f"prompt {p!r}: a sound name like 'queue-periodic-announce'")
        return v


class Extension(_Def):
    """A phone telephonist can ring (an agent's or a member of staff's)."""

    number: str = Field(pattern=r"^[0-9]{2,8}$")
    name: str = Field(default="", pattern=LABEL)
    contact: str | None = Field(default=None, pattern=r"^sip:[A-Za-z0-9.-]+:[0-9]{1,5}$")
    """A fixed SIP address (no registration), e.g. a desk phone or a test agent."""


class Agent(_Def):
    """A person who takes calls from queues."""

    id: str = Field(pattern=NAME)
    """The login name (``telephonist agent login alice``)."""
    name: str = Field(default="", pattern=LABEL)
    extension: str = Field(pattern=r"^[0-9]{2,8}$")
    """The agent's phone: a PJSIP endpoint of this number (password generated)."""
    contact: str | None = Field(default=None, pattern=r"^sip:[A-Za-z0-9.-]+:[0-9]{1,5}$")
    """A fixed SIP address instead of a registering phone (desk phones, test agents)."""
    skills: dict[str, int] = Field(default_factory=dict)
    """Queue name -> penalty (0 rings first). The queues the agent takes calls from."""

    @field_validator("skills")
    @classmethod
    def _penalties(cls, v: dict[str, int]) -> dict[str, int]:
        for queue, penalty in v.items():
            if not re.fullmatch(NAME, queue) or not 0 <= penalty <= 100:
                raise ValueError(f"skill {queue!r}: {penalty} (queue name -> penalty 0..100)")
        return v


class Mailbox(_Def):
    box: str = Field(pattern=DIGITS)
    name: str = Field(default="", pattern=LABEL)
    email: str | None = Field(default=None, pattern=r"^[^\s,|<>\"]+@[^\s,|<>\"]+$")
    """Where telephonist e-mails a notice of each new message (needs ``[smtp]`` settings)."""
    attach: bool = True
    """Attach the recording to the e-mail."""
    greeting: Literal["unavailable", "busy", "none"] = "unavailable"
    """Which greeting callers hear first (``none``: straight to the tone)."""
    max_seconds: int = Field(default=180, ge=5, le=3600)
    """Longest message."""
    callback: bool = True
    """A message whose caller number is known becomes a callback task."""
    callback_queue: str | None = Field(default=None, pattern=NAME)
    """The queue whose agents call back (default: the centre's ``callbacks.queue``)."""

    @property
    def options(self) -> str:
        """VoiceMail() options for this box's greeting."""
        return {"unavailable": "u", "busy": "b", "none": "s"}[self.greeting]


class Trunk(_Def):
    """An outside line: a SIP peer the centre sends outside numbers to."""

    name: str = Field(pattern=NAME)
    host: str = Field(pattern=r"^[A-Za-z0-9.-]+$")
    port: int = Field(default=5060, ge=1, le=65535)
    dial_format: DialFormat = "e164_digits"
    """How numbers telephonist dials (callbacks, campaigns) are sent through this trunk:
    ``e164_digits`` (12125550101), ``e164`` (+12125550101) or ``national`` (as dialled in
    the centre's country, ``dialer.region``: 2125550101, others with its international
    prefix). See ``core/numbers.py``."""
    dial_prefix: str = Field(default="", pattern=r"^[0-9]{0,8}$")
    """Digits sent before every number (an outside-line or carrier prefix); not with e164."""

    @model_validator(mode="after")
    def _prefix_format(self) -> Trunk:
        if self.dial_prefix and self.dial_format == "e164":
            raise ValueError("dial_prefix: a prefix cannot go before an E.164 (+) number")
        return self


SOUND = r"^[a-z0-9][a-z0-9_/-]{0,79}$"


class Survey(_Def):
    """The post-call survey of a queue: when the agent hangs up first, the caller hears
    ``prompt`` ("rate this call from 1 to 5") and presses a digit; the score is stored with
    the call, the queue and the agent (a SURVEY line in the queue_log)."""

    prompt: str = Field(default="custom/telephonist-survey", pattern=SOUND)
    thanks: str = Field(default="custom/telephonist-survey-thanks", pattern=SOUND)
    tries: int = Field(default=2, ge=1, le=3)
    """How many times the caller is asked (a key outside 1-5, or none, asks again)."""
    timeout: int = Field(default=6, ge=2, le=20)
    """Seconds to wait for the key after the prompt."""


class MissedCalls(_Def):
    """Which unserved calls become callback tasks (one per number)."""

    abandoned: bool = True
    """Callers who hung up while waiting in a queue..."""
    min_wait: int = Field(default=10, ge=0, le=3600)
    """...after waiting at least this many seconds (shorter: a wrong number, not a need)."""
    redirected: bool = True
    """Callers a queue could not serve (full, empty, no answer, after hours) whose
    destination was not another queue, a menu or an extension (which still serve them)."""
    delay: int = Field(default=120, ge=0, le=86400)
    """Seconds before a missed call is called back (the customer may call again first)."""
    window: int = Field(default=86400, ge=60)
    """A missed call from a number with an open task requested less than this many seconds
    ago joins that task instead of creating a second one."""


NUMBER_TYPES = (
    "fixed_line", "mobile", "fixed_line_or_mobile", "toll_free", "premium_rate", "shared_cost",
    "voip", "personal_number", "pager", "uan", "voicemail",
)  # fmt: skip
"""libphonenumber's number types, as ``callbacks.numbers.types`` names them."""


class CallbackNumbers(_Def):
    """Which numbers that came from outside (typed by a caller, a caller ID) the centre
    dials back (``callbacks/policy.py``). Emergency numbers: never."""

    countries: list[str] = Field(default_factory=list)
    """Countries (ISO 3166 codes) called back besides the home one (``dialer.region``)."""
    prefixes: list[str] = Field(default_factory=list)
    """Digit prefixes always called back, whatever their type (the centre's own ranges)."""
    types: list[str] = Field(
        default_factory=lambda: ["fixed_line", "mobile", "fixed_line_or_mobile", "toll_free"]
    )
    """The number types called back; premium-rate, shared-cost and the rest are refused."""

    @field_validator("countries")
    @classmethod
    def _countries(cls, v: list[str]) -> list[str]:
        return [check_region(c, "countries") for c in v]

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, v: list[str]) -> list[str]:
        for p in v:
            if not re.fullmatch(r"[0-9]{1,15}", p):
                raise ValueError(f"{p!r} is not a digit prefix (1-15 digits, no +)")
        return v

    @field_validator("types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        for t in v:
            if t not in NUMBER_TYPES:
                raise ValueError(f"{t!r} is not a number type ({', '.join(NUMBER_TYPES)})")
        return v


class Callbacks(_Def):
    """How callbacks are placed: an agent first, then the customer through ``trunk``."""

    numbers: CallbackNumbers = Field(default_factory=CallbackNumbers)
    requests_per_caller: int = Field(default=3, ge=1, le=1000)
    """Callbacks one caller number may ask for (IVR, queue) within ``requests_window``;
    beyond, they hear that the service is not available on their line."""
    requests_window: int = Field(default=86400, ge=60, le=30 * 86400)
    """Seconds over which ``requests_per_caller`` is counted."""

    trunk: str | None = Field(default=None, pattern=NAME)
    """The outside line customers are dialled through. Empty: callbacks are stored but
    never placed (``telephonist callback list`` shows them)."""
    queue: str | None = Field(default=None, pattern=NAME)
    """The queue for callbacks that name none (voicemail, manual ones)."""
    ring_seconds: int = Field(default=30, ge=10, le=180)
    """How long the customer's phone rings."""
    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_delay: int = Field(default=600, ge=5, le=86400)
    """Seconds before the next try after no answer / busy."""
    promote_after: int = Field(default=900, ge=0, le=86400)
    """A scheduled callback for a named agent goes to anyone in its queue after this many
    seconds past its time if that agent has not taken it."""
    missed: MissedCalls = Field(default_factory=MissedCalls)
    announce: str = Field(default="calling", pattern=r"^[a-z0-9][a-z0-9_/-]{0,79}$")
    """What the agent hears before the customer's number is read out and dialled."""


SL_FORMULAS = {
    "answered": "answered within T / answered",
    "offered": "answered within T / (answered + abandoned)",
    "abandoned_after": "answered within T / (answered + abandoned after T)",
}
"""Service-level formulas (``reports.service_level_formula``, ``report --formula``)."""


EMAIL = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"


class ScheduledReport(_Def):
    """A report e-mailed on a schedule (serve sends it through ``[smtp]``)."""

    name: str = Field(pattern=NAME)
    report: Literal["queues", "agents", "abandoned", "fcr"] = "queues"
    days: str = "mon-fri"
    """The days it is sent (``mon-fri``, ``mon``, ``sat,sun``...)."""
    at: str = "18:30"
    """The time it is sent, in the centre's time zone."""
    covers: Literal["today", "yesterday", "last_7_days", "last_week", "last_month"] = "today"
    interval: Literal["15", "30", "60", "day", "week", "month", "total"] = "60"
    """For ``queues``: the rows' period."""
    queues: tuple[str, ...] = ()
    """Only these queues (empty: all)."""
    to: tuple[str, ...] = Field(min_length=1)

    @field_validator("days")
    @classmethod
    def _days(cls, v: str) -> str:
        parse_days(v)
        return v

    @field_validator("at")
    @classmethod
    def _at(cls, v: str) -> str:
        parse_hhmm(v, "at")
        return v

    @field_validator("to")
    @classmethod
    def _to(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for address in v:
            if not re.fullmatch(EMAIL, address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return v


class Reports(_Def):
    """How the centre's numbers are counted (``telephonist report``)."""

    scheduled: tuple[ScheduledReport, ...] = ()
    """Reports e-mailed to other departments (which, for whom, when)."""

    short_abandon: int = Field(default=5, ge=0, le=300)
    """Callers who hang up within this many seconds are short abandons: counted apart, and
    left out of the service level (a wrong number, not a lost customer)."""
    service_level_formula: Literal["answered", "offered", "abandoned_after"] = "answered"
    fcr_days: int = Field(default=7, ge=1, le=90)
    """A caller answered who does not call again within this many days was resolved at first
    contact."""


DISPOSITION_KEYS = {
    "1": "sale", "2": "callback", "3": "not-interested", "4": "wrong-number", "9": "dnc",
}  # fmt: skip
"""The default digits an agent keys after ``*7`` on their phone, and their disposition."""


class Centre(_Def):
    name: str = Field(default="demo", pattern=NAME)
    timezone: str = "UTC"
    """The centre's own time zone: reports count days, weeks, months and intervals in it."""
    reports: Reports = Field(default_factory=Reports)
    dispositions: dict[str, str] = Field(default_factory=lambda: dict(DISPOSITION_KEYS))
    """Digit (after ``*7``) -> disposition code, for agents after a dialer call."""
    callbacks: Callbacks = Field(default_factory=Callbacks)
    lines: tuple[Line, ...] = ()
    queues: tuple[Queue, ...] = ()
    extensions: tuple[Extension, ...] = ()
    agents: tuple[Agent, ...] = ()
    mailboxes: tuple[Mailbox, ...] = ()
    trunks: tuple[Trunk, ...] = ()
    ivr: Path | None = None
    """The menu file (relative to this file)."""

    @field_validator("timezone")
    @classmethod
    def _centre_tz(cls, v: str) -> str:
        checked = check_timezone(v)
        assert checked is not None
        return checked

    @field_validator("dispositions")
    @classmethod
    def _disposition_keys(cls, v: dict[str, str]) -> dict[str, str]:
        for key, code in v.items():
            if not re.fullmatch(r"[0-9]", key):
                raise ValueError(f"{key!r} is not one digit (agents key *7 and one digit)")
            if not re.fullmatch(NAME, code):
                raise ValueError(f"{key}: {code!r} is not a disposition code (a-z, 0-9, _ -)")
        return v

    @model_validator(mode="after")
    def _scheduled_reports(self) -> Centre:
        _unique("reports.scheduled", [r.name for r in self.reports.scheduled], "name")
        for i, sched in enumerate(self.reports.scheduled):
            for queue in sched.queues:
                if queue not in self.queue_names:
                    raise ValueError(f"reports.scheduled.{i}.queues: no queue named {queue!r}")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Centre:
        _unique("lines", [x.number for x in self.lines], "number")
        _unique("lines", [x.name for x in self.lines], "name")
        _unique("queues", [x.name for x in self.queues], "name")
        _unique("extensions", [x.number for x in self.extensions], "number")
        _unique("mailboxes", [x.box for x in self.mailboxes], "box")
        _unique("agents", [x.id for x in self.agents], "id")
        _unique(
            "agents",
            [x.number for x in self.extensions] + [a.extension for a in self.agents],
            "extension (agents and extensions share numbers)",
        )
        for i, agent in enumerate(self.agents):
            for skill in agent.skills:
                if skill not in self.queue_names:
                    raise ValueError(f"agents.{i}.skills: no queue named {skill!r}")
        _unique("trunks", [x.name for x in self.trunks], "name")
        cb = self.callbacks
        if cb.trunk is not None and cb.trunk not in {t.name for t in self.trunks}:
            raise ValueError(f"callbacks.trunk: no trunk named {cb.trunk!r}")
        if cb.queue is not None and cb.queue not in self.queue_names:
            raise ValueError(f"callbacks.queue: no queue named {cb.queue!r}")
        for i, mb in enumerate(self.mailboxes):
            if mb.callback_queue is not None and mb.callback_queue not in self.queue_names:
                raise ValueError(f"mailboxes.{i}.callback_queue: no queue {mb.callback_queue!r}")
        for i, queue in enumerate(self.queues):
            for reason, dest in queue.redirects.model_dump().items():
                if dest is None:
                    continue
                kind, _, target = dest.partition(":")
                if kind in ("queue", "callback") and target not in self.queue_names:
                    raise ValueError(f"queues.{i}.redirects.{reason}: no queue named {target!r}")
                if kind == "queue" and target == queue.name:
                    raise ValueError(
                        f"queues.{i}.redirects.{reason}: a queue cannot overflow to itself"
                    )
                if kind == "voicemail" and target not in {m.box for m in self.mailboxes}:
                    raise ValueError(f"queues.{i}.redirects.{reason}: no mailbox {target!r}")
                if kind == "outside" and target.split("@")[1] not in {t.name for t in self.trunks}:
                    raise ValueError(f"queues.{i}.redirects.{reason}: no trunk in {target!r}")
        for i, line in enumerate(self.lines):
            if line.route == "queue" and line.queue not in self.queue_names:
                raise ValueError(
                    f"lines.{i}.queue: route 'queue' needs a defined queue (got {line.queue!r})"
                )
            kind, _, target = line.fallback.partition(":")
            if kind == "queue" and target not in self.queue_names:
                raise ValueError(f"lines.{i}.fallback: no queue named {target!r}")
            if kind == "voicemail" and target not in {m.box for m in self.mailboxes}:
                raise ValueError(f"lines.{i}.fallback: no mailbox {target!r}")
        return self

    @property
    def queue_names(self) -> set[str]:
        return {q.name for q in self.queues}

    def line(self, name: str) -> Line | None:
        return next((x for x in self.lines if x.name == name), None)

    def mailbox(self, box: str) -> Mailbox | None:
        return next((m for m in self.mailboxes if m.box == box), None)

    def agent(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def with_lines(self, extra: list[Line]) -> Centre:
        return self.model_copy(update={"lines": (*self.lines, *extra)})


def _unique(section: str, values: list[str], field: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise ValueError(f"{section}.{i}.{field}: {value!r} is defined twice")
        seen.add(value)


def parse_centre(text: str, source: str) -> Centre:
    """Parse a centre definition; errors name ``source``, the line and the field."""
    try:
        return validate(Centre, load_raw(text, source), source)
    except DefinitionError as exc:
        raise CentreError(exc.problems) from None


def load_centre(path: Path | None) -> Centre:
    """Load the centre file, or the shipped demo centre when ``path`` is None. A relative
    ``ivr`` path is made absolute against the file's folder."""
    if path is None:
        demo = resources.files("telephonist.demo")
        centre = parse_centre(demo.joinpath("centre.yaml").read_text(), "demo/centre.yaml")
        base = Path(str(demo))
    else:
        try:
            text = read_definition(path)
        except OSError as exc:
            raise CentreError([f"{path}: cannot read: {exc.strerror}"]) from None
        except DefinitionError as exc:
            raise CentreError(exc.problems) from None
        centre = parse_centre(text, str(path))
        base = path.parent
    if centre.ivr is not None and not centre.ivr.is_absolute():
        centre = centre.model_copy(update={"ivr": (base / centre.ivr).resolve()})
    return centre
