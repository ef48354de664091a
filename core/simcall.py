"""Simulated callers' keypresses: real RFC 4733 telephone events for sipp.

Used by the scenario tests, the IVR benchmark and anything else that has sipp press keys.
"""

from __future__ import annotations

import struct
from pathlib import Path

_EVENT_CODES = {**{str(i): i for i in range(10)}, "*": 10, "#": 11}


def dtmf_pcap(path: Path, digit: str, seq: int, timestamp: int, ssrc: int = 0x7E1E0001) -> Path:
    """An RFC 4733 press of ``digit`` as a pcap for sipp's ``play_pcap_audio``.

    sipp's own dtmf_2833_*.pcap all carry the same RTP timestamp, so Asterisk takes a second
    press of the same key for a retransmission of the first and drops it. Each press made here
    has its own timestamp and sequence numbers: 8 updates 20 ms apart, then 3 end packets.
    """
    code = _EVENT_CODES[digit]
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    packets = [(i, False) for i in range(8)] + [(8, True)] * 3
    for n, (i, end) in enumerate(packets):
        marker = 0x80 if n == 0 else 0
        rtp = struct.pack(">BBHII", 0x80, marker | 101, (seq + min(n, 8)) & 0xFFFF, timestamp, ssrc)
        duration = 160 * (i + 1)
        rtp += struct.pack(">BBH", code, (0x80 if end else 0) | 10, duration)
        udp = struct.pack(">HHHH", 49176, 10000, 8 + len(rtp), 0) + rtp
        ip = (
            struct.pack(
                ">BBHHHBBH4s4s",
                0x45,
                0,
                20 + len(udp),
                n,
                0,
                64,
                17,
                0,
                bytes([127, 0, 0, 1]),
                bytes([127, 0, 0, 1]),
            )
            + udp
        )
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        usec = 20_000 * min(n, 8) + n
        out.append(struct.pack("<IIII", 1_000_000, usec, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path
