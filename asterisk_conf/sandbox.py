"""The sandbox PBX: a real Asterisk 22 from Debian unstable, run under chroot on loopback.

The root filesystem is built once with mmdebstrap into ``pbx.cache_dir`` (outside the
repository) and reused. Each *instance* (``pbx.instance``) has its own rendered config, run,
log and spool folders inside it, its own ports, and its own PID file in ``data_dir``, so the
demo (``make run``) and the test suite can run side by side.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from telephonist.asterisk_conf.render import AsteriskPaths, render_all, write_config
from telephonist.core.ami import AmiError, probe_fully_booted
from telephonist.core.centre import Centre
from telephonist.core.settings import Settings, ensure_private_dir
from telephonist.core.speech import SpeechError, synthesize

PACKAGES = ("asterisk", "asterisk-core-sounds-en-gsm", "asterisk-moh-opsound-gsm")
PROMPTS = {
    "telephonist-survey": "Please rate this call. Press 1 for poor, up to 5 for excellent.",
    "telephonist-survey-thanks": "Thank you for your feedback. Goodbye.",
}
"""The prompts made for the sandbox (``custom/<name>``): the survey's defaults."""
"""What the sandbox's root filesystem holds; the hold music is for queue callers (without it
Asterisk logs "No music on hold classes configured" and they wait in silence). A cached
root filesystem built with another list is built again."""
READY_MARK = ".telephonist-ready"


class SandboxError(Exception):
    """The sandbox PBX could not be built, started or reached; the message says why."""


@dataclass
class Status:
    running: bool
    pid: int | None
    fully_booted: bool
    detail: str

    def __str__(self) -> str:
        state = "running" if self.running else "stopped"
        boot = ", AMI: FullyBooted" if self.fully_booted else ""
        pid = f" (pid {self.pid})" if self.pid else ""
        return f"{state}{pid}{boot}. {self.detail}".strip()


class Sandbox:
    def __init__(self, settings: Settings, centre: Centre) -> None:
        if settings.pbx.mode != "sandbox":
            raise SandboxError("pbx.mode is 'external': there is no sandbox PBX to manage")
        self.settings = settings
        self.centre = centre
        pbx = settings.pbx
        self.rootfs = pbx.cache_dir / f"rootfs-{pbx.debian_suite}"
        self.instance = pbx.instance
        self.pid_file = settings.data_dir / f"pbx-{self.instance}.pid"
        self.console_log = settings.data_dir / f"pbx-{self.instance}.console.log"
        self._proc: subprocess.Popen[bytes] | None = None  # when started by this process

    # -- paths ----------------------------------------------------------------------------
    def paths(self) -> AsteriskPaths:
        return AsteriskPaths.sandbox(self.instance, self._modules_dir())

    def _modules_dir(self) -> str:
        for candidate in sorted((self.rootfs / "usr/lib").glob("*/asterisk/modules")):
            return "/" + str(candidate.relative_to(self.rootfs))
        return "/usr/lib/x86_64-linux-gnu/asterisk/modules"

    def host_path(self, inside: str) -> Path:
        return self.rootfs / inside.lstrip("/")

    @property
    def log_file(self) -> Path:
        return self.host_path(self.paths().log) / "full.log"

    # -- build ----------------------------------------------------------------------------
    def ensure_rootfs(self, log: Callable[[str], object] = print) -> None:
        """Build the root filesystem if it is not there yet (about 30 s, 340 MB)."""
        mark = self.rootfs / READY_MARK
        if mark.exists() and _mark_packages(mark.read_text()) == set(PACKAGES):
            return
        if os.geteuid() != 0:
            raise SandboxError(
                "building the sandbox PBX needs root (mmdebstrap and chroot); run as root or "
                "use pbx.mode = 'external'"
            )
        if shutil.which("mmdebstrap") is None:
            raise SandboxError(
                "mmdebstrap is not installed: run `make setup` (apt-get install -y mmdebstrap)"
            )
        self.rootfs.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.rootfs.with_name(self.rootfs.name + ".building")
        if tmp.exists():
            shutil.rmtree(tmp)
        log(f"building the sandbox Asterisk root filesystem in {self.rootfs} (once) ...")
        cmd = [
            "mmdebstrap",
            "--variant=apt",
            # The reachable mirror copy may serve a sid Release file past its validity date.
            '--aptopt=Acquire::Check-Valid-Until "false"',
            "--include=" + ",".join(PACKAGES),
            self.settings.pbx.debian_suite,
            str(tmp),
        ]
        build_log = self.settings.data_dir / "pbx-build.log"
        build_log.parent.mkdir(parents=True, exist_ok=True)
        with build_log.open("w") as out:
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
            )
        if proc.returncode != 0:
            tail = "\n".join(build_log.read_text(errors="replace").splitlines()[-15:])
            shutil.rmtree(tmp, ignore_errors=True)
            raise SandboxError(
                f"mmdebstrap failed (exit {proc.returncode}); full log in {build_log}:\n{tail}"
            )
        if not (tmp / "usr/sbin/asterisk").exists():
            raise SandboxError(f"the built root filesystem has no /usr/sbin/asterisk ({tmp})")
        # On disk before it is marked ready: a crash cannot leave a half-written tree marked
        # built, and its ~340 MB of dirty pages are not written back while the PBX and serve
        # start (on a fresh CI machine, serve's first call right after a build stalled ~16 s
        # between answer and first prompt; the kernel throttling writers during that
        # write-back is the likely cause).
        log("writing the root filesystem to disk ...")
        os.sync()
        (tmp / READY_MARK).write_text(
            time.strftime("%F %T\n") + "packages: " + " ".join(PACKAGES) + "\n"
        )
        if self.rootfs.exists():
            shutil.rmtree(self.rootfs)
        tmp.rename(self.rootfs)

    # -- config ---------------------------------------------------------------------------
    def install_config(self) -> Path:
        """Render the config into the root filesystem; returns asterisk.conf (host path)."""
        paths = self.paths()
        files = render_all(self.settings, self.centre, paths)
        etc = self.host_path(paths.etc)
        write_config(files, etc)
        for inside in (paths.lib, paths.spool, paths.run, paths.log, paths.cache):
            self.host_path(inside).mkdir(parents=True, exist_ok=True)
        for sub in ("voicemail", "outgoing", "tmp", "monitor", "recording"):
            (self.host_path(paths.spool) / sub).mkdir(exist_ok=True)
        self._install_hosts()
        self._install_prompts()
        self._own(paths, etc)
        return etc / "asterisk.conf"

    def _install_prompts(self) -> None:
        """The spoken prompts telephonist ships (the post-call survey's), made once with
        espeak-ng and sox as 8 kHz WAV files in the sandbox's ``sounds/custom``. A centre
        records its own and names them in the queue's ``survey``."""
        custom = self.rootfs / "usr/share/asterisk/sounds/custom"
        wanted = {name: text for name, text in PROMPTS.items()
                  if not (custom / f"{name}.wav").exists()}  # fmt: skip
        if not wanted:
            return
        for name, text in wanted.items():
            try:
                synthesize(text, custom / f"{name}.wav")
            except SpeechError as exc:
                raise SandboxError(f"the sandbox's prompts: {exc}") from None

    def run_ids(self) -> tuple[int, int]:
        """The uid and gid of ``pbx.run_user`` in the root filesystem (not the host's)."""
        user = self.settings.pbx.run_user
        for line in (self.rootfs / "etc/passwd").read_text().splitlines():
            fields = line.split(":")
            if len(fields) >= 4 and fields[0] == user:
                return int(fields[2]), int(fields[3])
        raise SandboxError(
            f"pbx.run_user {user!r} does not exist in the sandbox root filesystem {self.rootfs}"
        )

    def _own(self, paths: AsteriskPaths, etc: Path) -> None:
        """Asterisk runs as ``pbx.run_user``: it reads its config (root-owned, group-readable,
        never writable) and owns only the folders it writes (database, spool, run, logs)."""
        uid, gid = self.run_ids()
        os.chown(etc, 0, gid)
        etc.chmod(0o750)
        for path in etc.iterdir():
            if path.is_file() and not path.is_symlink():
                os.chown(path, 0, gid)
                path.chmod(0o640)
        for inside in (paths.lib, paths.spool, paths.run, paths.log, paths.cache):
            top = self.host_path(inside)
            _own_path(top, uid, gid)
            for folder, dirs, files in os.walk(top):
                for name in dirs + files:
                    _own_path(Path(folder, name), uid, gid)

    def _install_hosts(self) -> None:
        """The host's /etc/hosts with its own name in it: without it every SIP request waits
        on failing DNS look-ups inside the chroot."""
        hosts = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else ""
        name = socket.gethostname()
        if name not in hosts.split():
            hosts += f"\n127.0.1.1 {name}\n"
        if "localhost" not in hosts.split():
            hosts = "127.0.0.1 localhost\n" + hosts
        (self.rootfs / "etc/hosts").write_text(hosts)

    # -- process --------------------------------------------------------------------------
    def _read_pid(self) -> int | None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None  # our child exited (or was killed): reaped by poll()
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _check_ports(self) -> None:
        pbx = self.settings.pbx
        for key, address, port, kind in (
            ("pbx.ami_port", pbx.ami_address, pbx.ami_port, socket.SOCK_STREAM),
            ("pbx.ari_port", pbx.ari_address, pbx.ari_port, socket.SOCK_STREAM),
            ("pbx.sip_port", pbx.sip_address, pbx.sip_port, socket.SOCK_DGRAM),
        ):
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            with socket.socket(family, kind) as s:
                if kind == socket.SOCK_STREAM:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((address, port))
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise SandboxError(
                            f"port {port} ({key}) on {address} is already in use by "
                            "another program; choose another port in the settings"
                        ) from None
                    raise SandboxError(f"{key}: cannot listen on {address}: {exc}") from None

    async def up(self, log: Callable[[str], object] = print) -> Status:
        """Build if needed, render the config, start Asterisk and wait for FullyBooted.
        Idempotent: a running, booted instance gets its config re-rendered and reloaded."""
        self.ensure_rootfs(log)
        conf = self.install_config()
        pid = self._read_pid()
        if pid is not None:
            status = await self.status()
            if status.fully_booted:
                try:
                    self.cli("core reload")
                    return status
                except SandboxError as exc:
                    # e.g. the root filesystem was rebuilt under a running instance
                    log(f"reload failed ({exc}); restarting the PBX")
            await self.down()
        self._check_ports()
        ensure_private_dir(self.settings.data_dir)
        inside_conf = "/" + str(conf.relative_to(self.rootfs))
        with self.console_log.open("ab") as out:
            proc = subprocess.Popen(
                ["chroot", str(self.rootfs), "/usr/sbin/asterisk", "-f", "-C", inside_conf],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the CLI that started it
            )
        self._proc = proc
        self.pid_file.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + self.settings.pbx.boot_timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SandboxError(
                    f"Asterisk exited at start-up with code {proc.returncode}:\n"
                    + self._tail(self.console_log)
                )
            try:
                await self._probe(timeout=2)
                return await self.status()
            except (OSError, TimeoutError, AmiError) as exc:
                last = str(exc) or type(exc).__name__
            await asyncio.sleep(0.3)
        await self.down()
        raise SandboxError(
            f"Asterisk did not report FullyBooted within {self.settings.pbx.boot_timeout}s "
            f"(last AMI error: {last}):\n" + self._tail(self.console_log)
        )

    async def _probe(self, timeout: float) -> dict[str, str]:
        s = self.settings
        return await probe_fully_booted(
            s.pbx.host, s.pbx.ami_port, s.pbx.ami_user, s.ami_secret, timeout=timeout
        )

    async def down(self, timeout: float = 15.0) -> bool:
        """Stop the instance by its PID; returns False if it was not running."""
        pid = self._read_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            await asyncio.sleep(0.1)
        if _alive(pid):
            _signal(pid, signal.SIGKILL)
            while _alive(pid):
                await asyncio.sleep(0.1)
        await self._reap()
        self.pid_file.unlink(missing_ok=True)
        return True

    async def _reap(self, timeout: float = 5.0) -> None:
        """Collect our own child's exit status (no zombie, no ResourceWarning),
        polling so that the event loop is never blocked while it goes."""
        if self._proc is None:
            return
        deadline = time.monotonic() + timeout
        while self._proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self._proc = None

    async def status(self) -> Status:
        pid = self._read_pid()
        if pid is None:
            return Status(False, None, False, f"instance '{self.instance}'")
        try:
            booted = await self._probe(timeout=3)
            detail = (
                f"instance '{self.instance}', AMI {self.settings.pbx.host}:"
                f"{self.settings.pbx.ami_port}, ARI :{self.settings.pbx.ari_port}, "
                f"SIP udp :{self.settings.pbx.sip_port}; {booted.get('Uptime', '')}"
            )
            return Status(True, pid, True, detail.rstrip("; "))
        except (OSError, TimeoutError, AmiError) as exc:
            return Status(True, pid, False, f"AMI not answering: {exc}")

    def cli(self, command: str) -> str:
        """Run one Asterisk CLI command through the remote console of this instance."""
        conf = "/" + str(
            (self.host_path(self.paths().etc) / "asterisk.conf").relative_to(self.rootfs)
        )
        proc = subprocess.run(
            ["chroot", str(self.rootfs), "/usr/sbin/asterisk", "-C", conf, "-rx", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if proc.returncode != 0:
            raise SandboxError(f"asterisk -rx {command!r} failed: {proc.stderr or proc.stdout}")
        return proc.stdout

    def _tail(self, path: Path, lines: int = 20) -> str:
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {path})"

    def logs(self, lines: int = 50) -> str:
        return self._tail(self.log_file, lines)


def _own_path(path: Path, uid: int, gid: int) -> None:
    """Give ``path`` (never a link's target) to uid:gid, unless it is theirs already (a
    spool with years of recordings is walked at every start; only new files are changed)."""
    st = path.lstat()
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid, follow_symlinks=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (it exited; its parent, maybe this process, has not collected it yet) counts
    # as gone, but only once every thread has: a killed Asterisk's main thread is a zombie
    # at once while its hundreds of other threads still run down, holding its sockets (a
    # restart right after a SIGKILL then found the AMI port still in use).
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return False
    except OSError:
        return True
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                if fh.read().split(") ", 1)[1][0] != "Z":
                    return True
        except FileNotFoundError:
            continue  # that thread has just gone
        except (OSError, IndexError):
            return True
    return False


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _mark_packages(text: str) -> set[str]:
    """The packages a ready mark says the root filesystem was built with.

    >>> sorted(_mark_packages("2026-12-03 10:00:00\\npackages: b a\\n"))
    ['a', 'b']
    """
    for line in text.splitlines():
        if line.startswith("packages:"):
            return set(line.removeprefix("packages:").split())
    return set()
