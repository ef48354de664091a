"""The sandbox PBX's process checks against real processes (no Asterisk needed)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from telephonist.asterisk_conf.sandbox import Sandbox, _alive
from telephonist.core.centre import load_centre
from telephonist.core.settings import load_settings

LISTENER = """
import socket, threading, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen()
for _ in range(300):  # Asterisk runs hundreds of threads
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print(s.getsockname()[1], flush=True)
time.sleep(60)
"""


def test_a_killed_process_is_gone_only_once_its_port_is_free() -> None:
    """A SIGKILLed multi-threaded process's main thread is a zombie at once while its other
    threads still run down and hold its sockets: counting it gone then made a restart
    right after a kill find the AMI port in use (the old check did, 15 times in 20)."""
    still_bound = 0
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(proc.pid):
            assert time.monotonic() < deadline, "a killed process never counted as gone"
            time.sleep(0.001)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                still_bound += 1
        proc.wait()
        proc.stdout.close()
        assert not _alive(proc.pid)
    assert still_bound == 0


SLOW_TO_STOP = """
import signal, time
signal.signal(signal.SIGTERM, lambda *_: None)  # Asterisk too takes a while to shut down
print("ready", flush=True)
time.sleep(60)
"""


def test_down_kills_a_slow_child_reaps_it_and_never_blocks_the_loop(tmp_path: Path) -> None:
    """`down()` runs inside serve's and the test harness's event loops: while it waits for
    the PBX to go, other tasks keep running, and our own child leaves no zombie."""
    settings = load_settings(data_dir=tmp_path)
    sandbox = Sandbox(settings, load_centre(None))
    proc = subprocess.Popen([sys.executable, "-c", SLOW_TO_STOP], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    sandbox._proc = proc
    sandbox.pid_file.write_text(f"{proc.pid}\n")

    async def main() -> tuple[bool, float, int]:
        gaps: list[float] = []
        stop = asyncio.Event()

        async def tick() -> None:
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        stopped = await sandbox.down(timeout=0.5)  # SIGTERM ignored: SIGKILL after 0.5 s
        stop.set()
        await ticker
        return stopped, max(gaps), len(gaps)

    try:
        stopped, worst_gap, ticks = asyncio.run(main())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert stopped
    assert proc.returncode == -signal.SIGKILL  # reaped by down(), killed after its time-out
    assert sandbox._proc is None and not sandbox.pid_file.exists()
    assert ticks >= 20 and worst_gap < 0.25, (ticks, worst_gap)
    assert asyncio.run(sandbox.down()) is False  # a second request finds nothing to stop
