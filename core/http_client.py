"""Calling serve's HTTP endpoint from the CLI and the benchmarks, with the token."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from telephonist.core.settings import Settings


class ApiError(Exception):
    """serve answered with an HTTP error; ``status`` and the JSON ``body`` say which."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {body.get('error', body)}")
        self.status, self.body = status, body


def url(settings: Settings, path: str) -> str:
    host = settings.http.host
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: this machine's loopback
        host = "127.0.0.1"
    return f"http://{host if ':' not in host else f'[{host}]'}:{settings.http.port}{path}"


def api(settings: Settings, path: str, *, method: str = "GET", timeout: float = 5.0) -> Any:
    """``method path`` on serve with ``Authorization: Bearer <http.token>``; returns the JSON
    answer. Raises :class:`ApiError` for an HTTP error, ``OSError`` when serve does not answer.
    """
    request = urllib.request.Request(
        url(settings, path),
        method=method,
        headers={"Authorization": f"Bearer {settings.http_token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read() or b"{}")
        except ValueError:
            body = {}
        raise ApiError(exc.code, body if isinstance(body, dict) else {}) from None
