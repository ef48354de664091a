"""serve's HTTP endpoint (loopback by default). Every route is in the README ("HTTP").

| route | key | what |
|---|---|---|
| ``GET /healthz`` | open from loopback | JSON, 200 when every link and loop is well, else 503 |
| ``GET /metrics`` | open from loopback | Prometheus text format |
| ``POST /ivr/reload`` | token | reload the menus (``telephonist ivr reload``) |
| ``GET /ivr/latency`` | token | recent digit-to-prompt latencies (the IVR benchmark) |
| ``POST /ivr/latency/reset`` | token | empty that buffer |
| ``GET /acd/state`` | token | live queues, with waiting callers' numbers |

Every request's ``Host`` header must name this endpoint (loopback names, ``http.host``,
``http.allowed_hosts``): a web page a browser loads from elsewhere cannot reach it through
DNS rebinding. The token (``Authorization: Bearer <http.token>``) is compared in constant
time; a route that changes anything is POST only.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from telephonist.acd.watcher import QueueWatcher
from telephonist.core import metrics
from telephonist.core.loops import Supervisor
from telephonist.core.supervision import Link
from telephonist.ivr.controller import LatencyLog
from telephonist.ivr.loader import IvrError
from telephonist.ivr.registry import MenuRegistry

log = logging.getLogger("telephonist.http")

OPEN_ON_LOOPBACK = frozenset({"/healthz", "/metrics"})
"""Routes a process on this machine may read without the token (health checks, Prometheus)."""
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port.

    >>> host_name("127.0.0.1:18080"), host_name("[::1]:80"), host_name("LocalHost")
    ('127.0.0.1', '::1', 'localhost')
    """
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _loopback(peer: str | None) -> bool:
    try:
        return peer is not None and ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


class HttpEndpoint:
    def __init__(
        self,
        host: str,
        port: int,
        links: list[Link],
        registry: MenuRegistry | None = None,
        queue_state: QueueWatcher | None = None,
        loops: Supervisor | None = None,
        *,
        token: str,
        allowed_hosts: Iterable[str] = (),
        latency: LatencyLog | None = None,
    ) -> None:
        self.latency = latency or LatencyLog()
        if not token:
            raise ValueError("the HTTP endpoint needs a token")
        self.host, self.port = host, port
        self.links = links
        self.registry = registry
        self.queue_state = queue_state
        self.loops = loops
        self._token = token.encode()
        self.allowed_hosts = LOOPBACK_NAMES | {host.lower()} | set(allowed_hosts)
        self.app = web.Application(middlewares=[self._guard])
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_post("/ivr/reload", self._ivr_reload)
        self.app.router.add_get("/ivr/latency", self._ivr_latency)
        self.app.router.add_post("/ivr/latency/reset", self._ivr_latency_reset)
        self.app.router.add_get("/acd/state", self._acd_state)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Host first (403), then the token (401) unless the route is open from loopback."""
        if host_name(request.host) not in self.allowed_hosts:
            log.warning("HTTP %s %s refused: Host %r is not this endpoint's",
                        request.method, request.path, request.host)  # fmt: skip
            return web.json_response({"error": "host not allowed"}, status=403)
        if request.path in OPEN_ON_LOOPBACK and _loopback(request.remote):
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 self._token):  # fmt: skip
            log.warning("HTTP %s %s from %s refused: no valid token",
                        request.method, request.path, request.remote)  # fmt: skip
            return web.json_response(
                {"error": "a valid token is needed (Authorization: Bearer <http.token>)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="telephonist"'},
            )
        return await handler(request)

    async def _acd_state(self, _request: web.Request) -> web.Response:
        """Live queues: waiting callers and agents (``telephonist queue status --watch``)."""
        if self.queue_state is None:
            return web.json_response({"error": "no queue watcher"}, status=404)
        body: dict[str, object] = {
            "loaded": self.queue_state.loaded,
            "queues": self.queue_state.state.snapshot(),
        }
        if _request.query.get("delays"):
            body["delays_ms"] = [round(d * 1000, 2) for d in self.queue_state.delays]
        return web.json_response(body)

    async def _ivr_latency(self, _request: web.Request) -> web.Response:
        """Recent digit-to-prompt latencies in ms."""
        return web.json_response({"ms": [round(x * 1000, 2) for x in self.latency.samples]})

    async def _ivr_latency_reset(self, _request: web.Request) -> web.Response:
        """Empty the latency buffer (the benchmark, before it measures)."""
        self.latency.samples.clear()
        return web.json_response({"ms": []})

    async def _ivr_reload(self, _request: web.Request) -> web.Response:
        """Reload the menus (``telephonist ivr reload``); 422 with the problems if refused."""
        if self.registry is None:
            return web.json_response({"error": "no menu file configured"}, status=404)
        try:
            menus = await self.registry.reload_async()
        except IvrError as exc:
            return web.json_response(
                {
                    "error": "refused",
                    "problems": exc.problems,
                    "running": self.registry.current.version,
                },
                status=422,
            )
        return web.json_response({"version": menus.version, "source": menus.source})

    async def _healthz(self, _request: web.Request) -> web.Response:
        components = {
            link.name: {"up": link.is_up, "connects": link.connects, "error": link.last_error}
            for link in self.links
        }
        loops = {h.name: h.as_dict() for h in (self.loops.loops if self.loops else [])}
        ok = all(c["up"] for c in components.values()) and not any(
            h["degraded"] for h in loops.values()
        )
        return web.json_response(
            {
                "status": "ok" if ok else "degraded",
                "components": components,
                "loops": loops,
                "degraded_loops": sorted(n for n, h in loops.items() if h["degraded"]),
            },
            status=200 if ok else 503,
        )

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def run(self) -> None:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
            log.info("HTTP on http://%s:%s (/healthz, /metrics)", self.host, self.port)
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
