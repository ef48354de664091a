"""Shared CLI plumbing: the ``--config`` option and turning known errors into clean exits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import typer

from telephonist.asterisk_conf.render import RenderError
from telephonist.core.ami import AmiClient, AmiError
from telephonist.core.centre import Centre
from telephonist.core.settings import Settings, SettingsError, load_settings
from telephonist.core.storage import Store
from telephonist.core.yamlfile import DefinitionError
from telephonist.ivr.definitions import Definitions, load_definitions


@dataclass
class CliState:
    config: Path | None = None
    _settings: Settings | None = None

    def settings(self) -> Settings:
        if self._settings is None:
            with errors():
                self._settings = load_settings(self.config)
        return self._settings

    def definitions(self) -> Definitions:
        with errors():
            return load_definitions(self.settings())

    def centre(self) -> Centre:
        """The centre with the IVR entry lines added."""
        return self.definitions().centre


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


KNOWN_ERRORS: tuple[type[Exception], ...] = (SettingsError, DefinitionError, RenderError)


@contextmanager
def errors(*extra: type[Exception]) -> Iterator[None]:
    """Print a known error as one clear message on stderr and exit 2."""
    try:
        yield
    except (*KNOWN_ERRORS, *extra) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None


T = TypeVar("T")


def open_store(settings: Settings) -> Store:
    """The database, with events published under the configured node."""
    return Store(
        settings.database_url, topic_prefix=settings.mqtt.topic_prefix, node=settings.mqtt.node
    )


def with_store(
    ctx: typer.Context,
    action: Callable[[Store, Centre], Awaitable[T]],
    *known: type[Exception],
) -> T:
    """Run ``action(store, centre)`` on a migrated database; ``known`` errors (and the
    settings/definition ones) exit 2 with their message."""
    st = state(ctx)
    settings = st.settings()
    centre = st.centre()

    async def go() -> T:
        store = open_store(settings)
        try:
            await store.migrate()
            return await action(store, centre)
        finally:
            await store.close()

    with errors(*known):
        return asyncio.run(go())


@asynccontextmanager
async def ami_session(settings: Settings) -> AsyncIterator[AmiClient]:
    """A short AMI connection for one command (no events); :class:`AmiError` if Asterisk
    cannot be reached within 10 s."""
    pbx = settings.pbx
    ami = AmiClient(pbx.host, pbx.ami_port, pbx.ami_user, settings.ami_secret, events="off")
    task = asyncio.create_task(ami.run(), name="ami")
    try:
        try:
            await ami.link.wait_up(10)
        except TimeoutError:
            where = f"{pbx.host}:{pbx.ami_port}"
            raise AmiError(
                f"cannot reach Asterisk's AMI at {where} ({ami.link.last_error})"
            ) from None
        yield ami
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
