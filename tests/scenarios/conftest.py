"""Scenario fixtures: one sandbox Asterisk instance ("test", its own ports) for the session,
our own Mosquitto, and ``serve`` processes. A component that cannot start fails the test
with the reason; nothing is skipped."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from telephonist.asterisk_conf.sandbox import Sandbox, SandboxError
from telephonist.core.ami import AmiClient
from telephonist.core.models import Call, IvrStep
from telephonist.core.settings import Settings, load_settings
from telephonist.core.storage import Store
from telephonist.ivr.definitions import load_definitions
from tests.scenarios import harness
from tests.scenarios.harness import Broker, Collector, Serve

SIP_HOST = "127.0.0.2"
harness.SIP_HOST = SIP_HOST
MQTT_PORT = 28830
HTTP_PORT = 28080
SMTP_PORT = 28825


SERVE_LOG = pytest.StashKey[Serve]()
PBX_LOG = pytest.StashKey[tuple[Path, int]]()
"""Asterisk's full.log and where the test's lines begin in it."""


QUIET_DEBUG = (" DEBUG aiosqlite:", " DEBUG asyncio:", " DEBUG alembic", " DEBUG sqlalchemy")
"""Debug lines of libraries, left out of a failure's report (thousands per test)."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed scenario test shows what serve logged during it (telephonist's own lines,
    DEBUG included: the ARI events its controllers saw, the last 200 lines) and what
    Asterisk wrote to its full log meanwhile (every dialplan step and prompt, with the
    millisecond): a failure seen once in CI can be understood from its report alone."""
    report = yield
    serve = item.stash.get(SERVE_LOG, None)
    if report.failed and serve is not None:
        lines = [
            line
            for line in serve.log_path.read_bytes()[serve.log_start :]
            .decode(errors="replace")
            .splitlines()
            if not any(q in line for q in QUIET_DEBUG)
        ]
        report.sections.append(("serve log during the test", "\n".join(lines[-200:])))
        pbx_log, start = item.stash.get(PBX_LOG, (None, 0))
        if pbx_log is not None and pbx_log.exists():
            with pbx_log.open("rb") as f:
                f.seek(start)
                text = f.read().decode(errors="replace").splitlines()
            report.sections.append(("asterisk full.log during the test", "\n".join(text[-150:])))
    return report


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenarios")


@pytest.fixture(scope="session")
def centre_dir(workdir: Path) -> Path:
    """A copy of tests/scenarios/centre: the reload test edits its menu file."""
    target = workdir / "centre"
    shutil.copytree(Path(__file__).parent / "centre", target)
    return target


@pytest.fixture(scope="session")
def config_file(workdir: Path, centre_dir: Path) -> Path:
    path = workdir / "telephonist.toml"
    path.write_text(
        f"""
data_dir = "{workdir / "data"}"
centre_file = "{centre_dir / "centre.yaml"}"
log_level = "DEBUG"
[pbx]
instance = "test"
verbose = 3
# SIP on its own address (as on a server whose phones reach a public one); AMI and ARI stay
# on 127.0.0.1 (test_security.py checks they cannot be reached on the SIP address).
sip_bind_address = "{SIP_HOST}"
ami_port = 25038
ari_port = 28088
sip_port = 25060
rtp_start = 32000
rtp_end = 32999
[agi]
port = 24573
read_timeout = 5
[http]
port = {HTTP_PORT}
[mqtt]
port = {MQTT_PORT}
node = "testnode"
[dialer]
caller_id = "+12125550100"
[smtp]
host = "127.0.0.1"
port = {SMTP_PORT}
sender = "pbx@example.test"
"""
    )
    return path


@pytest.fixture(scope="session")
def settings(config_file: Path) -> Settings:
    return load_settings(config_file)


@pytest.fixture(scope="session")
def broker(workdir: Path) -> Iterator[Broker]:
    b = Broker(MQTT_PORT, workdir / "mosquitto")
    try:
        b.start()
    except RuntimeError as exc:
        pytest.fail(f"the test MQTT broker could not start: {exc}")
    yield b
    b.stop()


@pytest.fixture(scope="session")
def pbx(settings: Settings) -> Iterator[Sandbox]:
    sandbox = Sandbox(settings, load_definitions(settings).centre)
    asyncio.run(sandbox.down())  # a test instance left by an interrupted run
    # Each test session starts from an empty queue_log, CEL file and voicemail spool: its
    # database is new, and lines or messages from an earlier session are not this session's
    # calls (an earlier run's CEL file was a backlog for the first serve to read, and its
    # dial-N calls would be recorded in place of this session's own).
    paths = sandbox.paths()
    for name in ("queue_log", "cel.json"):
        sandbox.host_path(paths.log).joinpath(name).unlink(missing_ok=True)
    shutil.rmtree(sandbox.host_path(paths.spool) / "voicemail", ignore_errors=True)
    try:
        asyncio.run(sandbox.up())
    except SandboxError as exc:
        pytest.fail(f"the sandbox Asterisk could not start: {exc}")
    yield sandbox
    asyncio.run(sandbox.down())


@pytest.fixture
def serve(
    request: pytest.FixtureRequest,
    pbx: Sandbox,
    broker: Broker,
    config_file: Path,
    workdir: Path,
) -> Iterator[Serve]:
    if broker.proc is None:
        broker.start()
    full_log = pbx.log_file
    request.node.stash[PBX_LOG] = (full_log, full_log.stat().st_size if full_log.exists() else 0)
    s = Serve(config_file, HTTP_PORT, workdir / "serve.log")
    s.start()
    request.node.stash[SERVE_LOG] = s
    yield s
    assert s.stop() == 0, f"serve did not exit cleanly on SIGTERM:\n{s.tail(80)}"


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    s = Store(settings.database_url)
    yield s
    await s.close()


@pytest.fixture
async def ami(settings: Settings, pbx: Sandbox) -> AsyncIterator[AmiClient]:
    """The test's own AMI connection, to drive Asterisk and watch what it does."""
    client = AmiClient(
        settings.pbx.host, settings.pbx.ami_port, settings.pbx.ami_user, settings.ami_secret
    )
    task = asyncio.create_task(client.run())
    await client.link.wait_up(10)
    yield client
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def call_by_caller(store: Store, caller: str, timeout: float = 10) -> Call:
    """The stored call from ``caller``, once it has ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with store.sessions() as s:
            row = (
                await s.execute(select(Call).where(col(Call.caller_number) == caller))
            ).scalar_one_or_none()
        if row is not None and row.ended_at is not None:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"no ended call from {caller} stored within {timeout}s")


__all__ = ["Collector", "call_by_caller"]


class AmiWatch:
    """Every AMI event Asterisk sends, for asserting where a call really went."""

    def __init__(self, ami: AmiClient) -> None:
        self.events: list[dict[str, str]] = []
        ami.on_event("*", lambda e: self.events.append(dict(e)))

    async def wait_for(self, predicate: Any, timeout: float = 15, what: str = "") -> dict[str, str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for ev in self.events:
                if predicate(ev):
                    return ev
            await asyncio.sleep(0.05)
        names = sorted({e.get("Event", "") for e in self.events})
        raise AssertionError(f"no AMI event {what} within {timeout}s (saw: {names})")


@pytest.fixture
async def ami_watch(ami: AmiClient) -> AmiWatch:
    return AmiWatch(ami)


async def journey(store: Store, caller: str, timeout: float = 15) -> tuple[Call, list[IvrStep]]:
    """The caller's stored call (once routed or ended) and its IVR steps, in order."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        async with store.sessions() as s:
            call = (
                await s.execute(select(Call).where(col(Call.caller_number) == caller))
            ).scalar_one_or_none()
            if call is not None and call.ended_at is not None:
                steps = (
                    (
                        await s.execute(
                            select(IvrStep)
                            .where(col(IvrStep.channel_id) == call.channel_id)
                            .order_by(col(IvrStep.seq))
                        )
                    )
                    .scalars()
                    .all()
                )
                return call, list(steps)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no finished IVR call from {caller} within {timeout}s")
