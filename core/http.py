"""Loopback HTTP endpoint: ``/healthz`` (JSON, 200 when every link is up, else 503) and
``/metrics`` (Prometheus text format)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core import metrics
from core.supervision import Link

log = logging.getLogger("telephonist.http")


class HttpEndpoint:
    def __init__(self, host: str, port: int, links: list[Link]) -> None:
        self.host, self.port = host, port
        self.links = links
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/metrics", self._metrics)

    async def _healthz(self, _request: web.Request) -> web.Response:
        components = {
            link.name: {"up": link.is_up, "connects": link.connects, "error": link.last_error}
            for link in self.links
        }
        ok = all(c["up"] for c in components.values())
        return web.json_response(
            {"status": "ok" if ok else "degraded", "components": components},
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
