"""Supervised AMI client on top of panoramisk 1.4.

panoramisk's ``Manager`` reconnects with ``call_later`` chains and runs event callbacks with
fire-and-forget ``ensure_future``; here one owner task supervises the connection (capped,
jittered back-off, each transition logged once) and one named task delivers events to the
handlers in order. Actions in flight when the link drops fail with :class:`AmiDisconnected`
rather than being replayed silently: replaying an ``Originate`` would call a customer twice,
so the caller decides.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from panoramisk import Manager
from panoramisk.message import Message

from telephonist.core.backoff import Backoff
from telephonist.core.loops import retry_after
from telephonist.core.supervision import Link

EventHandler = Callable[[Message], Awaitable[None] | None]
ConnectHandler = Callable[[], Awaitable[None]]

_UNSAFE = re.compile(r"[\r\n\x00]")


class AmiError(Exception):
    """An AMI action failed (``Response: Error``) or could not be sent."""


class AmiDisconnected(AmiError):
    """The connection dropped before the action's response arrived: whether Asterisk acted
    on it is unknown."""


class AmiUnavailable(AmiDisconnected):
    """AMI is not connected: the action was not sent."""


class AmiTimeout(AmiError):
    """The action was sent and no response came in time: whether Asterisk acted on it is
    unknown."""


def outcome_unknown(exc: AmiError) -> bool:
    """True when an action may have been carried out although it failed here (never send
    such an Originate again before checking what Asterisk did)."""
    return isinstance(exc, AmiDisconnected | AmiTimeout) and not isinstance(exc, AmiUnavailable)


def check_action(action: Mapping[str, Any]) -> dict[str, str]:
    """Return the action as strings, refusing values that could inject AMI headers.

    A CR or LF inside a value would end the header and start a new one (or a new action), so a
    caller ID or a name from a contact list must never carry one.

    >>> check_action({"Action": "Ping"})
    {'Action': 'Ping'}
    >>> check_action({"Action": "Originate", "CallerID": "x\\r\\nAction: Hangup"})
    Traceback (most recent call last):
    ...
    telephonist.core.ami.AmiError: AMI field 'CallerID' contains a line break or NUL; refused
    """
    out: dict[str, str] = {}
    for key, value in action.items():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", key):
            raise AmiError(f"AMI field name {key!r} is not a plain word; refused")
        text = str(value)
        if _UNSAFE.search(text):
            raise AmiError(f"AMI field {key!r} contains a line break or NUL; refused")
        out[key] = text
    return out


class _Manager(Manager):
    """panoramisk's Manager with its own reconnect and event dispatch taken away."""

    def __init__(self, queue: asyncio.Queue[Message], **config: Any) -> None:
        super().__init__(**config)
        self._events = queue
        self.lost: asyncio.Future[Any] = config["loop"].create_future()

    def dispatch(self, event: Message) -> list[str]:
        self._events.put_nowait(event)
        return []

    def connection_lost(self, exc: Any) -> None:
        self._connected = False
        pinger = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
            self.pinger = None
        if not self.lost.done():
            self.lost.set_result(exc)


class AmiClient:
    """One supervised AMI connection. Use ``run()`` as a task of the service's TaskGroup."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        name: str = "ami",
        login_timeout: float = 5.0,
        backoff: Backoff | None = None,
        events: str = "on",
    ) -> None:
        self.host, self.port = host, port
        self._username, self._secret = username, secret
        self.link = Link(name)
        self._login_timeout = login_timeout
        self._event_mask = events
        self._backoff = backoff or Backoff(base=0.2, cap=5.0)
        self._manager: _Manager | None = None
        self._handlers: list[tuple[re.Pattern[str], EventHandler]] = []
        self._on_connect: list[ConnectHandler] = []
        self._events: asyncio.Queue[Message] = asyncio.Queue()

    # -- public API -----------------------------------------------------------------------
    def on_event(self, pattern: str, handler: EventHandler) -> None:
        # (Events outside the login's event mask never arrive: see ``events``.)
        """Call ``handler(message)`` for events whose name matches the glob ``pattern``."""
        import fnmatch

        self._handlers.append((re.compile(fnmatch.translate(pattern), re.I), handler))

    def on_connect(self, handler: ConnectHandler) -> None:
        """Run ``handler()`` after every (re)connect, e.g. to reload state."""
        self._on_connect.append(handler)

    async def send(
        self, action: Mapping[str, Any], *, timeout: float = 10.0, as_list: bool | None = None
    ) -> Any:
        """Send an action once connected; return its response (a list for list actions).

        Raises :class:`AmiError` for ``Response: Error`` or no response in ``timeout``, and
        :class:`AmiDisconnected` if AMI is not connected within ``timeout`` or the link drops
        before the response (never a bare ``TimeoutError``).
        """
        fields = check_action(action)
        try:
            await self.link.wait_up(timeout)
        except TimeoutError:
            raise AmiUnavailable(
                f"{fields.get('Action')}: AMI not connected (waited {timeout}s"
                f"{': ' + self.link.last_error if self.link.last_error else ''})"
            ) from None
        manager = self._manager
        if manager is None:
            raise AmiUnavailable(f"{fields.get('Action')}: AMI not connected")
        # panoramisk 1.4: QueueAdd and friends never resolve unless as_list is explicit.
        future = manager.send_action(fields, as_list=as_list)
        try:
            async with asyncio.timeout(timeout):
                response = await asyncio.shield(future)
        except TimeoutError:
            raise AmiTimeout(f"{fields.get('Action')}: no response in {timeout}s") from None
        if isinstance(response, Message) and response.get("Response", "").lower() == "error":
            raise AmiError(f"{fields.get('Action')}: {response.get('Message', 'error')}")
        return response

    async def run(self) -> None:
        """Connect, and reconnect forever until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._deliver_events(), name=f"{self.link.name}-events")
            tg.create_task(self._supervise(), name=f"{self.link.name}-supervisor")

    # -- internals ------------------------------------------------------------------------
    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            manager = _Manager(
                self._events,
                host=self.host,
                port=self.port,
                username=self._username,
                secret=self._secret,
                events=self._event_mask,
                loop=loop,
                ping_delay=5,
                ping_interval=5,
            )
            try:
                await self._open(manager)
            except (OSError, TimeoutError, AmiError) as exc:
                manager.close()
                self.link.down(exc)
                await retry_after(self._backoff.next())
                continue
            self._manager = manager
            self._backoff.reset()
            self.link.up(f"{self.host}:{self.port}")
            try:
                for handler in self._on_connect:
                    await handler()
                reason = await manager.lost
            except asyncio.CancelledError:
                manager.close()
                raise
            finally:
                self._manager = None
                self._fail_pending(manager)
            manager.close()
            self.link.down(reason if isinstance(reason, BaseException) else "connection closed")
            await retry_after(self._backoff.next())

    async def _open(self, manager: _Manager) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._login_timeout):
            task = loop.create_task(
                loop.create_connection(manager.config["protocol_factory"], self.host, self.port)
            )
            await task
            manager.connection_made(task)  # panoramisk sends Login from here
            login = manager.authenticated_future
            if login is None:
                raise AmiError("login was not sent")
            response = await login
        if not response.success:
            raise AmiError(f"login refused for user {self._username!r}: {response.get('Message')}")

    def _fail_pending(self, manager: _Manager) -> None:
        protocol = getattr(manager, "protocol", None)
        pending = list(getattr(protocol, "responses", {}).values()) + list(manager.awaiting_actions)
        manager.awaiting_actions.clear()
        for action in pending:
            if not action.future.done():
                action.future.set_exception(AmiDisconnected("AMI connection lost"))

    async def _deliver_events(self) -> None:
        while True:
            event = await self._events.get()
            name = event.get("Event", "")
            for pattern, handler in self._handlers:
                if pattern.match(name):
                    try:
                        result = handler(event)
                        if inspect.isawaitable(result):
                            await result
                    except Exception:
                        self.link.log.exception("AMI event handler failed on %s", name)


async def channels(ami: AmiClient) -> list[dict[str, str]]:
    """Every channel Asterisk has now, as ``CoreShowChannels`` describes it (``Channel``,
    ``Uniqueid``, ``Context``, ``Application``...)."""
    response: Any = await ami.send({"Action": "CoreShowChannels"}, as_list=True)
    return [
        {str(k): str(v) for k, v in m.items()}
        for m in (response if isinstance(response, list) else [])
        if m.get("Event") == "CoreShowChannel"
    ]


async def list_channels(ami: AmiClient, field: str) -> list[str]:
    """``field`` (``Channel``, ``Uniqueid``...) of every channel Asterisk has now: what
    reconciliations compare their open records with."""
    return [c.get(field, "") for c in await channels(ami)]


async def probe_fully_booted(
    host: str, port: int, username: str, secret: str, timeout: float = 5.0
) -> dict[str, str]:
    """Log in once and wait for ``FullyBooted`` (sent at login when Asterisk is up).

    Returns the FullyBooted event's fields. Raises OSError/TimeoutError/AmiError.
    """
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            await reader.readline()  # banner: "Asterisk Call Manager/x.y"
            login = check_action(
                {"Action": "Login", "Username": username, "Secret": secret, "Events": "system"}
            )
            writer.write("".join(f"{k}: {v}\r\n" for k, v in login.items()).encode() + b"\r\n")
            await writer.drain()
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                fields = parse_block(block.decode(errors="replace"))
                if fields.get("Response", "").lower() == "error":
                    raise AmiError(f"login refused: {fields.get('Message')}")
                if fields.get("Event") == "FullyBooted":
                    return fields
        finally:
            writer.close()


def parse_block(text: str) -> dict[str, str]:
    """Parse one AMI message (``Key: Value`` lines) into a dict.

    >>> parse_block("Event: FullyBooted\\r\\nStatus: Fully Booted\\r\\n\\r\\n")
    {'Event': 'FullyBooted', 'Status': 'Fully Booted'}
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out
