"""Real components for the scenario tests: a Mosquitto broker we can stop, the ``serve``
process, sipp callers, and an MQTT collector. Nothing here is a stand-in."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiomqtt

from telephonist.bench.simcall import dtmf_scenario

T = TypeVar("T")

__all__ = ["dtmf_scenario"]

SIPP_DIR = Path(__file__).parents[2] / "bench" / "sipp"
SIP_HOST = "127.0.0.1"
"""Where sipp callers reach the PBX's SIP; the scenario session sets its own (conftest)."""
# Each sipp takes its SIP port and 4 media ports from -mp: keep 10 apart, clear of 25xxx.
_sipp_ports = itertools.count(26000, 10)


async def until(
    check: Callable[[], Awaitable[T | None]],
    timeout: float = 20,
    what: str = "",
    every: float = 0.2,
) -> T:
    """Poll the async ``check()`` until it returns something truthy, and return that; fail
    saying ``what`` was awaited and the last result."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what} (last: {result!r})")
        await asyncio.sleep(every)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class Broker:
    """A Mosquitto of our own on a test port, with persistence so that a persistent
    subscriber's session survives a restart (what a CRM's subscriber would use)."""

    def __init__(self, port: int, workdir: Path) -> None:
        if shutil.which("mosquitto") is None:
            raise RuntimeError("mosquitto is not installed (make setup installs it)")
        self.port = port
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            # Run as the invoking user (root in CI would otherwise drop to 'mosquitto', who
            # cannot write the persistence file in the test's folder).
            f"user {os.getenv('USER') or 'root'}\n"
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {workdir}/\nautosave_interval 1\n"
            f"log_dest file {workdir}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if port_open(self.port):
            raise RuntimeError(f"port {self.port} is taken; the test broker cannot start")
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.conf)])
        deadline = time.monotonic() + 10
        while not port_open(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start on {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class Serve:
    """``telephonist serve`` as its own process, as an admin would run it."""

    def __init__(self, config: Path, http_port: int, log: Path) -> None:
        self.config, self.http_port, self.log_path = config, http_port, log
        self.log_start = log.stat().st_size if log.exists() else 0
        """Where this serve's lines begin in the (shared, appended) log file."""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_healthy: bool = True, env_extra: dict[str, str] | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEPHONIST_")}
        env |= env_extra or {}
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "telephonist.cli.main", "--config", str(self.config), "serve"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=Path(__file__).parents[2],
        )
        if wait_healthy:
            try:
                self.wait_healthy(30)
            except AssertionError:
                # Never left running: the next test's serve would find its ports taken.
                self.kill()
                raise

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.http_port}/healthz", timeout=1
            ) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())
        except (OSError, ValueError):
            return None

    def wait_healthy(self, timeout: float) -> float:
        """Wait until every link is up; return how long it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.tail()}")
            h = self.health()
            if h is not None and h["status"] == "ok":
                return time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError(f"serve not healthy after {timeout}s: {self.health()}\n{self.tail()}")

    def stop(self) -> int:
        """SIGTERM, as systemd would; returns the exit code."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            # serve's own watchdog logs what still runs and exits 70 after 10 s.
            code = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"serve did not stop within 20 s of SIGTERM:\n{self.tail(80)}"
            ) from None
        self.proc = None
        self._log.close()
        return code

    def kill(self) -> None:
        """SIGKILL: the process dies at once, with no clean-up (a crash, an OOM kill)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self.proc = None
        self._log.close()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def telephonist(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``telephonist`` CLI as an admin would, against the scenario config."""
    return subprocess.run(
        [sys.executable, "-m", "telephonist.cli.main", "--config", str(config), *args],
        capture_output=True, text=True, timeout=30, check=False, cwd=Path(__file__).parents[2],
    )  # fmt: skip


def sipp_call(
    sip_port: int,
    number: str,
    caller: str,
    *,
    scenario: str = "call_hangup_by_pbx.xml",
    calls: int = 1,
    rate: float = 5,
    timeout: int = 40,
    auth: tuple[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    host: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Place real SIP calls with sipp; returns the finished process (check returncode).
    ``auth``: (user, password) answering the PBX's challenge (with a scenario that expects
    one, e.g. agent_call_auth.xml); ``source_ip``: the address the calls come from; ``host``:
    the PBX's SIP address (default :data:`SIP_HOST`)."""
    if shutil.which("sipp") is None:
        raise RuntimeError("sipp is not installed (make setup installs sip-tester)")
    port = next(_sipp_ports)
    cmd = [
        "sipp",
        f"{host or SIP_HOST}:{sip_port}",
        "-sf",
        str(SIPP_DIR / scenario),
        "-s",
        number,
        "-key",
        "caller",
        caller,
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-l",
        str(max(calls, 1)),
        "-i",
        source_ip,
        "-p",
        str(port),
        "-mp",
        str(port + 10000),
        "-timeout",
        f"{timeout}s",
        "-timeout_error",
        "-nostdin",
        *(["-au", auth[0], "-ap", auth[1]] if auth else []),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 20, check=False)


class AgentPhone:
    """A real SIP phone for an agent (sipp UAS): rings, answers, talks until the caller
    hangs up. ``answered()`` says whether it took a call."""

    def __init__(
        self,
        port: int,
        workdir: Path,
        scenario: str = "agent_answers.xml",
        calls: int = 1,
        timeout: int = 60,
        extra: tuple[str, ...] = (),
    ) -> None:
        """``timeout``: seconds before sipp gives up (0: never); ``extra``: more sipp options."""
        self.port = port
        self.scenario, self.calls, self.timeout = scenario, calls, timeout
        self.extra = extra
        self.log = workdir / f"agent-{port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                "sipp", "-sf", str(SIPP_DIR / self.scenario), "-i", "127.0.0.1",
                "-p", str(self.port), "-mp", str(self.port + 10000), "-m", str(self.calls),
                "-nostdin",
                *(["-timeout", f"{self.timeout}s"] if self.timeout else []),
                *self.extra,
            ],
            stdout=self._out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None and not self._out.closed:
            self._out.close()


class Collector:
    """Collects MQTT messages on ``topic`` with a persistent session (QoS 1), reconnecting
    when the broker goes away, so nothing published while it is away is missed."""

    def __init__(self, port: int, topic: str, client_id: str) -> None:
        self.port, self.topic, self.client_id = port, topic, client_id
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        self._task = asyncio.create_task(self._run(), name=f"collector-{self.client_id}")
        await asyncio.wait_for(self.subscribed.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1", self.port, identifier=self.client_id, clean_session=False
                ) as client:
                    await client.subscribe(self.topic, qos=1)
                    self.subscribed.set()
                    async for msg in client.messages:
                        payload = msg.payload
                        assert isinstance(payload, bytes | bytearray)
                        self.messages.append((str(msg.topic), json.loads(payload)))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    async def wait_for(
        self, predicate: Any, timeout: float = 15
    ) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if predicate(m)]
            if found:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"no matching MQTT message in {timeout}s; got {self.messages}")


class SmtpSink:
    """A local SMTP server that keeps every message it receives (for e-mail notices)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[str, list[str], bytes]] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SmtpSink:
        self._server = await asyncio.start_server(
            self._session, "127.0.0.1", self.port, limit=64 << 20
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sender, rcpts = "", []
        writer.write(b"220 sink ESMTP\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250 sink\r\n")
                elif verb == b"MAIL":
                    sender = line.decode().split(":", 1)[1].strip()
                    writer.write(b"250 OK\r\n")
                elif verb == b"RCPT":
                    rcpts.append(line.decode().split(":", 1)[1].strip())
                    writer.write(b"250 OK\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go on\r\n")
                    await writer.drain()
                    body = await reader.readuntil(b"\r\n.\r\n")
                    self.messages.append((sender, rcpts, body[:-5]))
                    writer.write(b"250 OK\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        finally:
            writer.close()

    async def wait_for(self, count: int = 1, timeout: float = 15) -> list[bytes]:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.messages) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{len(self.messages)} e-mail(s) received, {count} expected")
            await asyncio.sleep(0.1)
        return [m[2] for m in self.messages]


class AmiCutter:
    """A TCP relay between serve and Asterisk's AMI that can cut the connection the way a
    network fault does: ``cut_after_originates = n`` forwards n Originates to Asterisk, then
    drops the connection before their responses come back (Asterisk acted; serve cannot know)
    and refuses to relay for ``pause`` seconds."""

    def __init__(self, listen_port: int, ami_port: int) -> None:
        self.listen_port, self.ami_port = listen_port, ami_port
        self.cut_after_originates: int | None = None
        self.pause = 3.0
        self.originates = 0
        self.cuts = 0
        self._refuse_until = 0.0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> AmiCutter:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.listen_port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._links):
            w.close()
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._refuse_until:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.ami_port)
        self._links |= {writer, up_writer}
        cut = asyncio.Event()

        async def upstream() -> None:  # serve -> Asterisk, watching for Originates
            block = b""
            while not cut.is_set() and (data := await reader.read(65536)):
                block += data
                while b"\r\n\r\n" in block:
                    action, block = block.split(b"\r\n\r\n", 1)
                    if b"Action: Originate" in action:
                        self.originates += 1
                        if self.cut_after_originates == self.originates:
                            cut.set()  # before it goes: its response must not come back
                up_writer.write(data)
                await up_writer.drain()
            if cut.is_set():
                await asyncio.sleep(0.5)  # Asterisk reads it before the socket closes

        async def downstream() -> None:  # Asterisk -> serve, until the cut
            while not cut.is_set() and (data := await up_reader.read(65536)):
                if cut.is_set():
                    break
                writer.write(data)
                await writer.drain()

        try:
            tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if cut.is_set():
                self.cuts += 1
                self.cut_after_originates = None
                self._refuse_until = time.monotonic() + self.pause
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for w in (writer, up_writer):
                self._links.discard(w)
                w.close()
