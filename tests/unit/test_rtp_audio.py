"""The audio the simulated parties send (bench/rtp.py): a pcap of 20 ms RTP packets sipp can
play, made from real speech."""

from __future__ import annotations

import struct
from pathlib import Path

from telephonist.bench import rtp


def _packets(path: Path) -> list[tuple[float, bytes]]:
    data = path.read_bytes()
    magic, major, minor, _, _, _, link = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 1)
    out, at = [], 24
    while at < len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[at : at + 16])
        frame = data[at + 16 : at + 16 + incl]
        assert incl == orig and frame[12:14] == b"\x08\x00"
        udp = frame[14 + 20 :]
        assert struct.unpack("!H", udp[4:6])[0] == len(udp)
        out.append((sec + usec / 1e6, udp[8:]))
        at += 16 + incl
    return out


def test_audio_becomes_20_ms_rtp_packets(tmp_path: Path) -> None:
    audio = bytes(range(256)) + rtp.silence(100)  # 256 + 800 bytes: 7 packets, the last padded
    assert rtp.write_pcap(tmp_path / "a.pcap", audio) == 7
    packets = _packets(tmp_path / "a.pcap")
    assert [round(t, 3) for t, _ in packets] == [n * 0.02 for n in range(7)]
    for n, (_, packet) in enumerate(packets):
        version, pt, seq, stamp, _ssrc = struct.unpack("!BBHII", packet[:12])
        assert (version, pt, seq, stamp, len(packet)) == (0x80, 0, n, n * 160, 12 + 160)
    assert packets[0][1][12:] == audio[:160]
    assert packets[-1][1][-1:] == b"\xff"  # padded with silence


def test_a_machine_greets_for_longer_than_a_person(tmp_path: Path) -> None:
    person = _packets(rtp.person(tmp_path / "p.pcap"))
    machine = _packets(rtp.machine(tmp_path / "m.pcap"))

    def voiced_ms(packets: list[tuple[float, bytes]]) -> int:
        return 20 * sum(1 for _, p in packets if any(b not in (0xFF, 0x7F) for b in p[12:]))

    assert voiced_ms(person) < 1500 < voiced_ms(machine)  # app_amd's greeting limit
    assert voiced_ms(machine) > 5000
