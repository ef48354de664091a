"""Scenario fixtures: one sandbox Asterisk instance ("test", its own ports) for the session,
our own Mosquitto, and ``serve`` processes. A component that cannot start fails the test
with the reason; nothing is skipped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from asterisk_conf.sandbox import Sandbox, SandboxError
from core.ami import AmiClient
from core.centre import load_centre
from core.models import Call
from core.settings import Settings, load_settings
from core.storage import Store
from tests.scenarios.harness import Broker, Collector, Serve

MQTT_PORT = 28830
HTTP_PORT = 28080


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenarios")


@pytest.fixture(scope="session")
def config_file(workdir: Path) -> Path:
    path = workdir / "telephonist.toml"
    path.write_text(
        f"""
data_dir = "{workdir / "data"}"
log_level = "INFO"
[pbx]
instance = "test"
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
    sandbox = Sandbox(settings, load_centre(settings.centre_file))
    try:
        asyncio.run(sandbox.up())
    except SandboxError as exc:
        pytest.fail(f"the sandbox Asterisk could not start: {exc}")
    yield sandbox
    asyncio.run(sandbox.down())


@pytest.fixture
def serve(pbx: Sandbox, broker: Broker, config_file: Path, workdir: Path) -> Iterator[Serve]:
    if broker.proc is None:
        broker.start()
    s = Serve(config_file, HTTP_PORT, workdir / "serve.log")
    s.start()
    yield s
    assert s.stop() == 0, f"serve did not exit cleanly on SIGTERM:\n{s.tail()}"


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
