"""The sandbox PBX's process checks against real processes (no Asterisk needed)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from telephonist.asterisk_conf.sandbox import _alive

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
