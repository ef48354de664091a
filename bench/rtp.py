"""Real audio for simulated SIP parties: text spoken by espeak-ng, turned by sox into 8 kHz
G.711 µ-law, cut into 20 ms RTP packets and written as a pcap file that sipp sends with
``<exec play_pcap_audio="FILE"/>`` (the way sipp sends the DTMF pcaps Debian ships).

Used to make answering machines and people for the dialer's AMD tests and benches: a person
says "Hello?" and waits; a machine plays a long greeting.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

RATE = 8000
FRAME = 160
"""Samples (and µ-law bytes) in 20 ms."""
SILENCE = b"\xff"
"""µ-law silence."""


class AudioError(RuntimeError):
    """espeak-ng or sox missing or failing (the message says which)."""


def speech(text: str, *, voice: str = "en-us", speed: int = 160) -> bytes:
    """``text`` spoken, as 8 kHz mono µ-law bytes."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise AudioError(f"{tool} is not installed (make setup installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        wav, ul = Path(tmp) / "s.wav", Path(tmp) / "s.ul"
        for cmd in (
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text],
            ["sox", str(wav), "-r", str(RATE), "-c", "1", "-t", "ul", str(ul)],
        ):
            done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
            if done.returncode != 0:
                raise AudioError(f"{cmd[0]} failed: {done.stderr.strip()[:300]}")
        return ul.read_bytes()


def silence(ms: int) -> bytes:
    return SILENCE * (RATE * ms // 1000)


def write_pcap(path: Path, audio: bytes, *, payload_type: int = 0, ssrc: int = 0x7E1E) -> int:
    """Write ``audio`` (µ-law) as RTP packets of 20 ms in a pcap file (Ethernet, IPv4, UDP;
    sipp replaces the addresses and ports); returns the number of packets. A last partial
    frame is padded with silence."""
    if len(audio) % FRAME:
        audio += SILENCE * (FRAME - len(audio) % FRAME)
    packets = 0
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # DLT_EN10MB
        for n in range(len(audio) // FRAME):
            rtp = struct.pack("!BBHII", 0x80, payload_type & 0x7F, n & 0xFFFF, n * FRAME, ssrc)
            rtp += audio[n * FRAME : (n + 1) * FRAME]
            udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp  # fmt: skip
            frame = b"\x00" * 12 + b"\x08\x00" + ip
            usec = n * 20_000
            out.write(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame),
                                  len(frame)))  # fmt: skip
            out.write(frame)
            packets += 1
    return packets


def person(path: Path, *, answer: str = "Hello?", wait_ms: int = 4000) -> Path:
    """A person picking up: a short word, then silence while they wait for an answer."""
    write_pcap(path, silence(300) + speech(answer) + silence(wait_ms))
    return path


def machine(
    path: Path,
    *,
    greeting: str = (
        "Hello, you have reached the voicemail of John Smith at Example Incorporated. "
        "I am not available to take your call right now. Please leave your name, your number "
        "and a short message after the tone, and I will call you back as soon as I can."
    ),
) -> Path:
    """An answering machine: a long greeting with many words, at once."""
    write_pcap(path, silence(200) + speech(greeting) + silence(1000))
    return path


__all__ = ["AudioError", "machine", "person", "silence", "speech", "write_pcap"]
