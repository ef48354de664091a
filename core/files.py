"""Writing files an admin asked for (exports, rejects, pictures) without being tricked.

An export may land in a shared folder where another local user planted a symbolic link named
like the file (``/tmp/report.csv -> ~admin/.ssh/authorized_keys``). :func:`open_export`
never follows one: it refuses it with a clear error. The file is created 0600 (it may hold
callers' numbers) or truncated if it is an existing regular file of the admin's.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import IO, Literal, overload


class ExportError(OSError):
    """The file cannot be written safely; the message names it and says why."""


@overload
def open_export(path: Path, mode: Literal["w"] = "w", *, newline: str | None = None) -> IO[str]: ...
@overload
def open_export(path: Path, mode: Literal["wb"], *, newline: str | None = None) -> IO[bytes]: ...
def open_export(
    path: Path, mode: Literal["w", "wb"] = "w", *, newline: str | None = None
) -> IO[str] | IO[bytes]:
    """Open ``path`` for writing, refusing a symbolic link or anything but a regular file."""
    try:
        # O_NONBLOCK: a FIFO planted there fails at once instead of hanging the command.
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ExportError(
                f"{path}: is a symbolic link; refused (write to a real file)"
            ) from None
        if exc.errno == errno.ENXIO:  # a FIFO nobody reads
            raise ExportError(f"{path}: not a regular file; refused") from None
        raise ExportError(f"{path}: cannot be written ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ExportError(f"{path}: not a regular file; refused")
    os.set_blocking(fd, True)
    os.ftruncate(fd, 0)
    if mode == "wb":
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", newline=newline, encoding="utf-8")
