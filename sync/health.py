"""The service's HTTP endpoint: /healthz (the loop is alive), /readyz (database reachable and
every held stream scanned successfully of late), /metrics (Prometheus text format)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from sync import errors
from sync.metrics import CONTENT_TYPE
from sync.service import Service

STALL = 30.0  # seconds without a heartbeat after which the loop counts as stuck


def create_app(service: Service) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        stalled = time.monotonic() - service.heartbeat
        if stalled > STALL:
            return web.Response(status=503, text=f"event loop stalled for {stalled:.0f} s\n")
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        problems = await service.ready()
        service.metrics.ready.set(0 if problems else 1)
        if problems:
            return web.Response(status=503, text="".join(f"{p}\n" for p in problems))
        return web.Response(text="ready\n")

    async def metrics(request: web.Request) -> web.Response:
        response = web.Response(body=service.metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


@asynccontextmanager
async def serve(service: Service, host: str, port: int) -> AsyncIterator[str]:
    """Serve until the block ends; yields the base URL (port 0 picks a free one)."""
    runner = web.AppRunner(create_app(service), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise errors.ConfigError(f"cannot serve HTTP on {host}:{port}: {exc.strerror or exc}") from exc
        bound = runner.addresses[0]
        yield f"http://{host if ':' not in host else f'[{host}]'}:{bound[1]}"
    finally:
        await runner.cleanup()
