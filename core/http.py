"""Loopback HTTP endpoint: ``/healthz`` (JSON, 200 when every link is up, else 503),
``/metrics`` (Prometheus text format) and ``POST /ivr/reload``."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from acd.watcher import QueueWatcher
from core import metrics
from core.loops import Supervisor
from core.supervision import Link
from ivr.controller import LATENCY_SAMPLES
from ivr.loader import IvrError
from ivr.registry import MenuRegistry

log = logging.getLogger("telephonist.http")


class HttpEndpoint:
    def __init__(
        self,
        host: str,
        port: int,
        links: list[Link],
        registry: MenuRegistry | None = None,
        queue_state: QueueWatcher | None = None,
        loops: Supervisor | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.links = links
        self.registry = registry
        self.queue_state = queue_state
        self.loops = loops
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_post("/ivr/reload", self._ivr_reload)
        self.app.router.add_get("/ivr/latency", self._ivr_latency)
        self.app.router.add_get("/acd/state", self._acd_state)

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

    async def _ivr_latency(self, request: web.Request) -> web.Response:
        """Recent digit-to-prompt latencies in ms; ``?reset=1`` empties the buffer."""
        samples = [round(x * 1000, 2) for x in LATENCY_SAMPLES]
        if request.query.get("reset"):
            LATENCY_SAMPLES.clear()
        return web.json_response({"ms": samples})

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
