"""Supervised ARI client on top of aioari 0.10.2.

aioari's ``Client.run()`` returns when the event websocket closes and has no heartbeat; its
listeners run one at a time inside the websocket reader. Here one owner task connects (REST
resources + event websocket for our Stasis app), marks the link up only once the websocket is
open (the app is then registered), probes ``GET /asterisk/info`` as a heartbeat, and on any
failure closes everything and reconnects with capped, jittered back-off -- which registers
the Stasis app again after an Asterisk restart. Events are handed, unprocessed, to a queue the
Stasis dispatcher reads, so a slow call never stalls the websocket.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aioari
import aiohttp
from aioswagger11.http_client import (
    ApiKeyAuthenticator,
    AsynchronousHttpClient,
)

from telephonist.core.backoff import Backoff
from telephonist.core.loops import retry_after
from telephonist.core.supervision import Link

ConnectHandler = Callable[[], Awaitable[None]]


class AriError(Exception):
    """An ARI request failed. ``status`` is the HTTP status (0 when not connected)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class AriClient:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        app: str,
        *,
        name: str = "ari",
        heartbeat: float = 3.0,
        backoff: Backoff | None = None,
        allowed_events: tuple[str, ...] | None = None,
    ) -> None:
        self.base_url = f"http://{host}:{port}/"
        self._host = host
        self._username, self._secret = username, secret
        self.app = app
        self.link = Link(name)
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._heartbeat = heartbeat
        self._backoff = backoff or Backoff(base=0.2, cap=3.0)
        self._client: Any = None
        self._on_connect: list[ConnectHandler] = []
        self.allowed_events = allowed_events
        """If set, Asterisk is asked to send the app only these event types: every other
        event (ChannelVarset, ChannelDialplan...) costs a JSON parse per call for nothing."""

    def on_connect(self, handler: ConnectHandler) -> None:
        """Run ``handler()`` after every (re)connect, once the Stasis app is registered."""
        self._on_connect.append(handler)

    async def op(
        self, resource: str, operation: str, *, timeout: float = 10.0, **params: Any
    ) -> Any:
        """Call one ARI operation, e.g. ``op("channels", "answer", channelId=...)``.

        Waits up to ``timeout`` for the link; raises :class:`AriError` on failure.
        """
        try:
            await self.link.wait_up(timeout)
        except TimeoutError:
            raise AriError(f"{resource}.{operation}: ARI not connected") from None
        client = self._client
        try:
            async with asyncio.timeout(timeout):
                return await getattr(getattr(client, resource), operation)(**params)
        except TimeoutError:
            raise AriError(f"{resource}.{operation}: no answer in {timeout}s") from None
        except aiohttp.web_exceptions.HTTPError as exc:  # what aioswagger11 raises
            raise AriError(f"{resource}.{operation}: {exc.status} {exc.text}", exc.status) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise AriError(f"{resource}.{operation}: {exc}") from None

    async def run(self) -> None:
        """Connect, and reconnect forever until cancelled."""
        while True:
            client = None
            try:
                client = await self._connect()
                ws = await client.swagger.events.eventWebsocket(app=self.app)
                self._client = client
                await self._filter_events(client)
                self._backoff.reset()
                self.link.up(f"{self.base_url} app={self.app}")
                for handler in self._on_connect:
                    await handler()
                await self._session(client, ws)
                self.link.down("event websocket closed")
            except (OSError, TimeoutError, aiohttp.ClientError, AriError) as exc:
                self.link.down(exc)
            except aiohttp.web_exceptions.HTTPError as exc:
                self.link.down(f"HTTP {exc.status}: {exc.text}")
            finally:
                self._client = None
                if client is not None:
                    await _close_quietly(client)
            await retry_after(self._backoff.next())

    async def _filter_events(self, client: Any) -> None:
        if not self.allowed_events:
            return
        body = {"allowed": [{"type": t} for t in self.allowed_events]}
        try:
            async with asyncio.timeout(5):
                await client.applications.filter(applicationName=self.app, filter=body)
        except (aiohttp.web_exceptions.HTTPError, aiohttp.ClientError, TimeoutError) as exc:
            # Older Asterisk: no filter, every event arrives; correct, only slower.
            self.link.log.warning("ARI event filter not applied: %s", exc)

    async def _session(self, client: Any, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read events until the websocket closes or the heartbeat fails."""
        error: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                beat = tg.create_task(self._beat(client, ws), name=f"{self.link.name}-heartbeat")
                await self._read(ws)
                beat.cancel()
        except* (OSError, TimeoutError, aiohttp.ClientError, AriError) as group:
            error = group.exceptions[0]
        if error is not None:
            raise error

    async def _connect(self) -> Any:
        # aioari.connect() leaks its HTTP session when init fails; build it here instead.
        http = AsynchronousHttpClient(
            auth=ApiKeyAuthenticator(self._host, f"{self._username}:{self._secret}")
        )
        client = aioari.Client(self.base_url, http)
        try:
            async with asyncio.timeout(10):
                await client.init()
        except BaseException:
            await http.close()
            raise
        return client

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                try:
                    event = json.loads(msg.data)
                except ValueError:
                    self.link.log.warning("ARI sent a message that is not JSON; ignored")
                    continue
                if isinstance(event, dict) and "type" in event:
                    self.events.put_nowait(event)
            elif msg.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.ERROR,
            ):
                return

    async def _beat(self, client: Any, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Probe Asterisk; a failure raises and ends the connection (then we reconnect)."""
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                async with asyncio.timeout(self._heartbeat):
                    await client.asterisk.getInfo()
            except aiohttp.web_exceptions.HTTPError as exc:
                raise AriError(f"heartbeat: HTTP {exc.status}") from None
            except TimeoutError:
                raise AriError("heartbeat: no answer") from None
            except (aiohttp.ClientError, OSError) as exc:
                raise AriError(f"heartbeat: {exc}") from None
            if ws.closed:
                raise AriError("event websocket closed")


async def _close_quietly(client: Any) -> None:
    try:
        async with asyncio.timeout(2):
            await client.close()
    except (OSError, TimeoutError, aiohttp.ClientError):
        pass
