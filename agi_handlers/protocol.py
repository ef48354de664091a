"""FastAGI protocol parsing: pure functions, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

_RESULT = re.compile(r"^(?P<code>\d{3})[ -](?:result=(?P<result>-?[^ ]*))?\s*(?P<data>.*)$")


class AgiProtocolError(Exception):
    pass


@dataclass(frozen=True)
class AgiResult:
    """A parsed reply to one AGI command."""

    code: int
    result: str
    data: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 200 and not self.result.startswith("-")

    @property
    def value(self) -> str:
        """The value in parentheses, e.g. ``GET VARIABLE`` gives ``200 result=1 (value)``."""
        m = re.match(r"^\((.*)\)", self.data)
        return m.group(1) if m else ""


def parse_env_line(line: str) -> tuple[str, str] | None:
    """Parse one ``agi_xxx: value`` header line; None for a line that is not one.

    >>> parse_env_line("agi_channel: PJSIP/anonymous-00000001")
    ('agi_channel', 'PJSIP/anonymous-00000001')
    >>> parse_env_line("GET / HTTP/1.1") is None
    True
    """
    key, sep, value = line.partition(": ")
    if not sep or not re.fullmatch(r"agi_[a-z0-9_]+", key):
        return None
    return key, value


def parse_result(line: str) -> AgiResult:
    """Parse a reply line.

    >>> parse_result("200 result=1 (PJSIP/x-1)")
    AgiResult(code=200, result='1', data='(PJSIP/x-1)')
    >>> parse_result("510 Invalid or unknown command").code
    510
    >>> parse_result("200 result=-1").ok
    False
    """
    m = _RESULT.match(line.strip())
    if not m:
        raise AgiProtocolError(f"not an AGI reply: {line[:80]!r}")
    return AgiResult(int(m.group("code")), m.group("result") or "", m.group("data") or "")


def script_and_args(env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The route name and query arguments of ``agi://host/<route>?a=1``.

    >>> script_and_args({"agi_network_script": "selftest?x=1"})
    ('selftest', {'x': '1'})
    """
    raw = env.get("agi_network_script", "")
    parts = urlsplit(raw)
    return parts.path.strip("/"), dict(parse_qsl(parts.query))


_SAFE_ARG = re.compile(r'^[^\r\n\x00"]*$')


def quote_arg(value: str) -> str:
    """Quote one AGI command argument; refuse what would break out of the command line.

    >>> quote_arg("hello world")
    '"hello world"'
    >>> quote_arg('x"\\nHANGUP')
    Traceback (most recent call last):
    ...
    telephonist.agi_handlers.protocol.AgiProtocolError: unsafe AGI argument refused: 'x"\\nHANGUP'
    """
    if not _SAFE_ARG.match(value):
        raise AgiProtocolError(f"unsafe AGI argument refused: {value!r}")
    return f'"{value}"'
