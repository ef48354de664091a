"""The running menus, and reloading them without dropping a call.

A reload loads and checks the file into a new :class:`MenuSet` version; calls already in a
menu keep the version they started with (they hold a reference to it), new calls take the new
one. A file with any problem is refused and the running version stays.

In serve, the file is read and checked in a worker thread (:meth:`MenuRegistry.reload_async`):
a large or hostile file never holds up the calls in progress.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from telephonist.core.centre import Centre
from telephonist.ivr.loader import IvrError, MenuSet, load_menus

log = logging.getLogger("telephonist.ivr")


class MenuRegistry:
    def __init__(self, path: Path, centre: Centre, prompts: set[str] | None = None) -> None:
        self.path = path
        self.centre = centre
        self.prompts = prompts
        self.current: MenuSet = load_menus(path, centre, prompts, version=1)
        self._mtime = self._stat()

    def _stat(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def reload(self) -> MenuSet:
        """Load the file again. Raises IvrError (and keeps the running version) if bad."""
        self._mtime = self._stat()
        new = load_menus(self.path, self.centre, self.prompts, self.current.version + 1)
        return self._take(new)

    async def reload_async(self) -> MenuSet:
        """:meth:`reload`, with the reading and checking done off the event loop."""
        self._mtime = self._stat()
        version = self.current.version + 1
        new = await asyncio.to_thread(load_menus, self.path, self.centre, self.prompts, version)
        return self._take(new)

    def _take(self, new: MenuSet) -> MenuSet:
        self.current = new
        log.info("menus reloaded from %s: version %d", self.path, new.version)
        return new

    async def watch(self, interval: float = 1.0) -> None:
        """Reload when the file changes (what `serve` runs)."""
        while True:
            await asyncio.sleep(interval)
            mtime = self._stat()
            if mtime and mtime != self._mtime:
                try:
                    await self.reload_async()
                except IvrError as exc:
                    log.error(
                        "menu file changed but was refused; still running version %d:\n%s",
                        self.current.version,
                        exc,
                    )
