"""Simulated callers for sipp: scenarios that dial, press real RFC 4733 keys and hang up.

Used by the scenario tests, the IVR benchmark and anything else that has sipp call in.
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


_INVITE = """
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "sipp" <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:[caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "sipp" <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:[caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""

_END = """
  <recv request="BYE" timeout="{hold}" ontimeout="caller_bye"/>
  <send next="end">
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
  <label id="caller_bye"/>
  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "sipp" <sip:[caller]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:[caller]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
  <label id="end"/>
"""


_PBX_HANGS_UP = """
  <recv request="BYE" timeout="{hold}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
"""


def dtmf_scenario(
    path: Path, keys: list[tuple[int, str]], hold_ms: int = 3000, *, pbx_must_hang_up: bool = False
) -> Path:
    """A sipp caller: answer, then for each (pause ms, digits) wait and press the digits
    as real RFC 4733 events; then wait ``hold_ms`` for the PBX to hang up, or hang up.
    With ``pbx_must_hang_up`` the call fails unless the PBX hangs up within ``hold_ms``."""
    body = [_INVITE]
    press = 0
    for pause, digits in keys:
        body.append(f'  <pause milliseconds="{pause}"/>')
        for d in digits:
            press += 1
            pcap = dtmf_pcap(
                path.with_name(f"{path.stem}-{press}.pcap"),
                d,
                seq=press * 20,
                timestamp=press * 16000,
            )
            body.append(f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>')
            body.append('  <pause milliseconds="350"/>')
    body.append((_PBX_HANGS_UP if pbx_must_hang_up else _END).format(hold=hold_ms))
    return _write_scenario(path, "dtmf caller", body)


def _write_scenario(path: Path, name: str, body: list[str]) -> Path:
    xml = (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<!DOCTYPE scenario SYSTEM "sipp.dtd">\n'
        f'<scenario name="{name}">\n' + "\n".join(body) + "\n</scenario>\n"
    )
    path.write_text(xml)
    return path


def _ulaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 mu-law (what PCMU carries)."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), clip) + bias
    exponent = max(0, sample.bit_length() - 8)
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def audio_pcap(path: Path, seconds: float, hz: float = 440.0, ssrc: int = 0x7E1E0002) -> Path:
    """``seconds`` of a tone as PCMU RTP (20 ms packets) in a pcap for ``play_pcap_audio``:
    what a caller says into a voicemail box. Loud enough not to count as silence."""
    import math

    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    packets = int(seconds * 50)
    for n in range(packets):
        samples = bytes(
            _ulaw(int(12000 * math.sin(2 * math.pi * hz * (n * 160 + i) / 8000)))
            for i in range(160)
        )
        rtp = struct.pack(">BBHII", 0x80, (0x80 if n == 0 else 0), n & 0xFFFF, n * 160, ssrc)
        udp = struct.pack(">HHHH", 49178, 10000, 8 + len(rtp) + 160, 0) + rtp + samples
        ip = struct.pack(
            ">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0,
            bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
        ) + udp  # fmt: skip
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        t = n * 20_000
        out.append(
            struct.pack("<IIII", 1_000_000 + t // 1_000_000, t % 1_000_000, len(frame), len(frame))
            + frame
        )
    path.write_bytes(b"".join(out))
    return path


def audio_scenario(path: Path, seconds: float, hold_ms: int) -> Path:
    """A sipp caller who, once answered, speaks for ``seconds`` (a tone), then hangs up
    ``hold_ms`` after the answer (e.g. after leaving a voicemail)."""
    pcap = audio_pcap(path.with_suffix(".pcap"), seconds)
    body = [
        _INVITE,
        f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>',
        _END.format(hold=hold_ms),
    ]
    return _write_scenario(path, "speaking caller", body)
