"""Small real HTTP servers for the cases the emulator must not produce on its own: a page of
crafted bytes, a link to another host, a TLS certificate nobody trusts."""

from __future__ import annotations

import contextlib
import inspect
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Served:
    base_url: str
    requests: list[web.Request] = field(default_factory=list)  # every request, in order


@contextlib.asynccontextmanager
async def serve(answer: Callable[[web.Request], web.Response | Awaitable[web.Response]], *,
                ssl_context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> AsyncIterator[Served]:
    """Answer every request with `answer(request)` (a coroutine function is awaited); record what was asked."""
    served = Served(base_url="")

    async def handler(request: web.Request) -> web.Response:
        served.requests.append(request)
        response = answer(request)
        return await response if inspect.isawaitable(response) else response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
        await site.start()
        scheme = "https" if ssl_context else "http"
        served.base_url = f"{scheme}://{host}:{runner.addresses[0][1]}"
        yield served
    finally:
        await runner.cleanup()


def json_body(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")
