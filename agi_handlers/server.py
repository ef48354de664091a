"""A FastAGI server that a misbehaving client cannot freeze.

panoramisk 1.4's FastAGI server loops forever on a bare connect/close and crashes on plain
routes under Python 3.11; this one reads with a time-out, caps the header size, refuses
garbage, and gives every connection its own task that is cancelled at shutdown.

Routes are ``async def handler(session: AgiSession) -> None`` registered by name; the
dialplan calls them as ``AGI(agi://host:port/<name>?arg=value)``.

Only the PBX may talk to it: a peer not in ``permit`` is closed before a byte is read; at most
``max_connections`` sessions at once (more are closed at once); and no session lasts longer
than ``session_limit`` seconds, however slowly its client answers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Iterable

from telephonist.agi_handlers.protocol import (
    AgiProtocolError,
    AgiResult,
    parse_env_line,
    parse_result,
    script_and_args,
)
from telephonist.core import metrics
from telephonist.core.settings import Settings

log = logging.getLogger("telephonist.agi")

MAX_HEADER_LINES = 200
MAX_LINE = 8192

Handler = Callable[["AgiSession"], Awaitable[None]]


class AgiHangup(Exception):
    """The channel hung up (Asterisk said HANGUP or closed the connection)."""


class AgiSession:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: dict[str, str],
        timeout: float,
    ) -> None:
        self._reader, self._writer = reader, writer
        self.env = env
        self.route, self.args = script_and_args(env)
        self._timeout = timeout

    async def command(self, line: str) -> AgiResult:
        """Send one AGI command (already quoted, see ``quote_arg``) and parse the reply."""
        if "\n" in line or "\r" in line:
            raise AgiProtocolError("an AGI command is one line")
        self._writer.write(line.encode() + b"\n")
        await self._writer.drain()
        async with asyncio.timeout(self._timeout):
            raw = await self._reader.readline()
        if not raw:
            raise AgiHangup(self.env.get("agi_channel", ""))
        text = raw.decode(errors="replace").strip()
        if text.startswith("HANGUP"):
            raise AgiHangup(self.env.get("agi_channel", ""))
        return parse_result(text)


def agi_peers(settings: Settings) -> set[str]:
    """The addresses FastAGI accepts: the PBX's (``pbx.host``, resolved) and ``agi.permit``."""
    peers = set(settings.agi.permit)
    try:
        for info in socket.getaddrinfo(settings.pbx.host, None, proto=socket.IPPROTO_TCP):
            peers.add(str(info[4][0]))
    except OSError as exc:
        raise ValueError(f"setting 'pbx.host' ({settings.pbx.host!r}): {exc}") from None
    return peers


class AgiServer:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        read_timeout: float = 10.0,
        session_limit: float = 60.0,
        max_connections: int = 100,
        permit: Iterable[str] = ("127.0.0.1", "::1"),
    ) -> None:
        self.host, self.port = host, port
        self.read_timeout = read_timeout
        self.session_limit = session_limit
        self.max_connections = max_connections
        self.permit = {ipaddress.ip_address(a) for a in permit}
        self.routes: dict[str, Handler] = {}
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()

    def route(self, name: str, handler: Handler) -> None:
        self.routes[name] = handler

    async def run(self) -> None:
        """Serve until cancelled; open connections are cancelled and awaited on the way out."""
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, limit=MAX_LINE, reuse_address=True
        )
        self.ready.set()
        log.info("FastAGI listening on %s:%s", self.host, self.port)
        try:
            async with self._server:
                await self._server.serve_forever()
        finally:
            self.ready.clear()
            for task in list(self._connections):
                task.cancel()
            if self._connections:
                await asyncio.gather(*self._connections, return_exceptions=True)

    def _permitted(self, peer: object) -> bool:
        try:
            address = ipaddress.ip_address(peer[0] if isinstance(peer, tuple) else "")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address in self.permit

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        outcome = "refused"
        if not self._permitted(peer):
            log.warning("FastAGI connection from %s refused: not the PBX (agi.permit)", peer)
        elif len(self._connections) >= self.max_connections:
            log.warning("FastAGI connection from %s refused: %d sessions open (the cap)",
                        peer, len(self._connections))  # fmt: skip
        else:
            outcome = "error"
        if outcome == "refused":
            metrics.AGI_SESSIONS.labels(outcome).inc()
            writer.close()
            return
        self._connections.add(task)
        try:
            async with asyncio.timeout(self.session_limit):
                outcome = await self._handle(reader, writer)
        except TimeoutError:
            log.warning("FastAGI session from %s ended: longer than %ss", peer,
                        self.session_limit)  # fmt: skip
            outcome = "session_limit"
        finally:
            self._connections.discard(task)
            metrics.AGI_SESSIONS.labels(outcome).inc()
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ConnectionError):
                pass

    async def _read_env(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        env: dict[str, str] = {}
        for _ in range(MAX_HEADER_LINES):
            async with asyncio.timeout(self.read_timeout):
                raw = await reader.readline()
            if not raw:
                return None  # closed before the end of the header
            line = raw.decode(errors="replace").rstrip("\r\n")
            if line == "":
                return env if env else None
            parsed = parse_env_line(line)
            if parsed is None:
                raise AgiProtocolError(f"not an AGI header line: {line[:60]!r}")
            env[parsed[0]] = parsed[1]
        raise AgiProtocolError("AGI header too long")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        peer = writer.get_extra_info("peername")
        try:
            env = await self._read_env(reader)
        except TimeoutError:
            log.warning("FastAGI client %s sent nothing for %ss; dropped", peer, self.read_timeout)
            return "timeout"
        except (AgiProtocolError, ValueError, asyncio.LimitOverrunError) as exc:
            log.warning("FastAGI client %s: %s; dropped", peer, exc)
            return "garbage"
        except (ConnectionError, OSError):
            return "closed"
        if env is None:
            return "closed"
        session = AgiSession(reader, writer, env, self.read_timeout)
        handler = self.routes.get(session.route)
        if handler is None:
            log.warning("FastAGI: no route %r (channel %s)", session.route, env.get("agi_channel"))
            try:
                await session.command('VERBOSE "telephonist: no such AGI route" 1')
            except (AgiHangup, AgiProtocolError, TimeoutError, ConnectionError, OSError):
                pass
            return "no_route"
        try:
            await handler(session)
        except AgiHangup:
            return "hangup"
        except (AgiProtocolError, TimeoutError, ConnectionError, OSError) as exc:
            log.warning("FastAGI route %s: %s", session.route, exc)
            return "error"
        except Exception:
            # A bug in one route must not take the server down; the call continues in the
            # dialplan after AGI() returns.
            log.exception("FastAGI route %s failed", session.route)
            return "error"
        return "ok"
