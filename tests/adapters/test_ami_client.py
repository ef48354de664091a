"""The supervised AMI client against a scripted AMI server on a local socket."""

from __future__ import annotations

import asyncio
import socket

import pytest

from telephonist.core.ami import AmiClient, AmiDisconnected, AmiError
from telephonist.core.backoff import Backoff


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BOOTED = b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"


class FakeAsterisk:
    """Speaks enough AMI: banner, Login, Ping, and pushes events on demand."""

    def __init__(self, port: int, secret: str = "pw") -> None:
        self.port, self.secret = port, secret
        self.writers: list[asyncio.StreamWriter] = []
        self.actions: list[dict[str, str]] = []
        self.server: asyncio.Server | None = None
        self.silent_actions: set[str] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()
        self.writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        try:
            while True:
                block = await reader.readuntil(b"\r\n\r\n")
                fields = dict(line.split(": ", 1) for line in block.decode().strip().split("\r\n"))
                self.actions.append(fields)
                name = fields.get("Action", "")
                if name in self.silent_actions:
                    continue
                aid = fields.get("ActionID", "")
                if name == "Login":
                    ok = fields.get("Secret") == self.secret
                    status = "Success" if ok else "Error"
                    msg = "Authentication accepted" if ok else "Authentication failed"
                    writer.write(
                        f"Response: {status}\r\nActionID: {aid}\r\nMessage: {msg}\r\n\r\n".encode()
                    )
                    if ok:
                        writer.write(BOOTED)
                else:
                    writer.write(
                        f"Response: Success\r\nActionID: {aid}\r\nPing: Pong\r\n\r\n".encode()
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async def push_event(self, text: str) -> None:
        for w in self.writers:
            w.write(text.encode())
            await w.drain()


async def test_login_action_events_and_reconnect() -> None:
    port = free_port()
    fake = FakeAsterisk(port)
    await fake.start()
    ami = AmiClient("127.0.0.1", port, "u", "pw", backoff=Backoff(base=0.05, cap=0.2))
    events: list[str] = []
    connects = 0

    async def on_connect() -> None:
        nonlocal connects
        connects += 1

    ami.on_event("Queue*", lambda e: events.append(e["Queue"]))
    ami.on_connect(on_connect)
    task = asyncio.create_task(ami.run())
    try:
        await ami.link.wait_up(5)
        response = await ami.send({"Action": "Ping"})
        assert response["Ping"] == "Pong"
        await fake.push_event("Event: QueueCallerJoin\r\nQueue: sales\r\n\r\n")
        await fake.push_event("Event: Newchannel\r\nChannel: x\r\n\r\n")
        await fake.push_event("Event: QueueCallerLeave\r\nQueue: support\r\n\r\n")
        for _ in range(50):
            if len(events) == 2:
                break
            await asyncio.sleep(0.02)
        assert events == ["sales", "support"]  # matching events only, in order

        # The server goes away with an action in flight: it fails, not hangs.
        fake.silent_actions.add("QueueStatus")
        pending = asyncio.create_task(ami.send({"Action": "QueueStatus"}, timeout=5))
        await asyncio.sleep(0.1)
        await fake.stop()
        with pytest.raises(AmiDisconnected):
            await pending
        await ami.link.wait_down()
        assert not ami.link.is_up

        await fake.start()  # Asterisk is back: reconnect by itself
        await ami.link.wait_up(5)
        assert (await ami.send({"Action": "Ping"}))["Ping"] == "Pong"
        assert connects == 2
        assert ami.link.connects == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()


async def test_wrong_secret_stays_down_with_reason() -> None:
    port = free_port()
    fake = FakeAsterisk(port, secret="right")
    await fake.start()
    ami = AmiClient("127.0.0.1", port, "u", "wrong", backoff=Backoff(base=0.05, cap=0.1))
    task = asyncio.create_task(ami.run())
    try:
        await asyncio.sleep(0.5)
        assert not ami.link.is_up
        assert ami.link.last_error is not None and "login refused" in ami.link.last_error
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await fake.stop()


async def test_header_injection_is_refused_before_sending() -> None:
    ami = AmiClient("127.0.0.1", 1, "u", "pw")
    with pytest.raises(AmiError, match="CallerID"):
        await ami.send({"Action": "Originate", "CallerID": '"Eve" <1>\r\nAction: Hangup'})
