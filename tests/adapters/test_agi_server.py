"""The FastAGI server against real sockets: the three abuses that freeze panoramisk 1.4's
server, each followed by a normal session that must still be served promptly."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from telephonist.agi_handlers.server import AgiServer, AgiSession

ENV = (
    b"agi_network: yes\nagi_network_script: echo?who=test\nagi_request: agi://x/echo\n"
    b"agi_channel: PJSIP/test-1\nagi_uniqueid: 1.1\n\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def server() -> AsyncIterator[tuple[AgiServer, list[dict[str, object]]]]:
    seen: list[dict[str, object]] = []

    async def echo(session: AgiSession) -> None:
        result = await session.command('GET VARIABLE "CHANNEL(name)"')
        seen.append({"args": session.args, "env": session.env, "value": result.value})

    srv = AgiServer("127.0.0.1", free_port(), read_timeout=0.5)
    srv.route("echo", echo)
    task = asyncio.create_task(srv.run(), name="agi-under-test")
    await asyncio.wait_for(srv.ready.wait(), 5)
    yield srv, seen
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def normal_session(port: int) -> bytes:
    """Play Asterisk's side of a FastAGI exchange; return the command the route sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(ENV)
    await writer.drain()
    command = await asyncio.wait_for(reader.readline(), 2)
    writer.write(b"200 result=1 (PJSIP/test-1)\n")
    await writer.drain()
    rest = await asyncio.wait_for(reader.read(), 2)  # the server closes after the route
    writer.close()
    assert rest == b""
    return command


async def test_normal_session(server: tuple[AgiServer, list[dict[str, object]]]) -> None:
    srv, seen = server
    assert await normal_session(srv.port) == b'GET VARIABLE "CHANNEL(name)"\n'
    assert seen == [{"args": {"who": "test"}, "env": seen[0]["env"], "value": "PJSIP/test-1"}]
    assert seen[0]["env"]["agi_channel"] == "PJSIP/test-1"  # type: ignore[index]


async def test_bare_connect_and_close(server: tuple[AgiServer, list[dict[str, object]]]) -> None:
    srv, seen = server
    for _ in range(20):
        _r, w = await asyncio.open_connection("127.0.0.1", srv.port)
        w.close()
        await w.wait_closed()
    # The event loop is not spinning: a normal session completes well within its time-outs.
    assert await asyncio.wait_for(normal_session(srv.port), 2) == b'GET VARIABLE "CHANNEL(name)"\n'
    assert len(seen) == 1


async def test_garbage_lines(server: tuple[AgiServer, list[dict[str, object]]]) -> None:
    srv, seen = server
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00\xff" * 100 + b"\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) == b""  # dropped, nothing answered
    writer.close()
    # A header line longer than the limit is dropped too, not buffered forever.
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(b"agi_x: " + b"a" * 100_000 + b"\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    assert await normal_session(srv.port) == b'GET VARIABLE "CHANNEL(name)"\n'
    assert len(seen) == 1


async def test_stalled_client_is_dropped_and_others_are_served(
    server: tuple[AgiServer, list[dict[str, object]]],
) -> None:
    srv, seen = server
    stall_r, stall_w = await asyncio.open_connection("127.0.0.1", srv.port)
    stall_w.write(b"agi_network: yes\n")  # half a header, then silence
    await stall_w.drain()
    # Served while the staller hangs on.
    assert await asyncio.wait_for(normal_session(srv.port), 1) == b'GET VARIABLE "CHANNEL(name)"\n'
    # The staller is disconnected after read_timeout (0.5 s).
    assert await asyncio.wait_for(stall_r.read(), 3) == b""
    stall_w.close()
    assert len(seen) == 1


async def test_route_that_stalls_mid_command_is_dropped(
    server: tuple[AgiServer, list[dict[str, object]]],
) -> None:
    srv, seen = server
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    writer.write(ENV)
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), 2)  # the command; we never answer
    assert await asyncio.wait_for(reader.read(), 3) == b""
    writer.close()
    assert seen == []
