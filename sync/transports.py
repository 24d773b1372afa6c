"""The transport under the Twilio client (httpx's seam): it carries one GET to the server and
its answer back, and nothing else. What to ask, what to retry and what an answer means are
the client's (sync/http.py). `AiohttpTransport` is the one the client makes by default; a test
may hand the client a fake of its own `Transport` instead, never a mock of aiohttp."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from sync import errors

# aiohttp's errors of a server that cannot be reached or stopped answering: worth another try.
UNREACHABLE = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


class Response(Protocol):
    """An answer whose status and headers are in and whose body is still to be read: the client
    acts on the status (a pause, the budget's window) before it reads the body."""

    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes: ...


class Transport(Protocol):
    """Carries one GET to the server and its answer back, for the block of `get`; follows no
    redirect. Raises RetryableSourceError when the server cannot be reached (or stops
    answering), FatalSourceError when its TLS certificate does not verify."""

    def get(self, url: str, headers: Mapping[str, str]) -> AbstractAsyncContextManager[Response]: ...

    async def close(self) -> None: ...


class AiohttpTransport:
    """The default transport: one aiohttp session with at most 32 connections. TLS is always
    verified (aiohttp's default, never turned off here) and redirects are not followed.
    Make it inside the event loop (aiohttp's session needs one)."""

    def __init__(self, timeout: float = 60.0) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=10),
                                              connector=aiohttp.TCPConnector(limit=32))

    @asynccontextmanager
    async def get(self, url: str, headers: Mapping[str, str]) -> AsyncIterator[Response]:
        try:
            async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
                yield resp
        except aiohttp.ClientConnectorCertificateError as exc:
            origin = urlsplit(url)
            raise errors.FatalSourceError(
                f"the TLS certificate of {origin.scheme}://{origin.netloc} could not be verified "
                f"({exc.certificate_error}); refusing to send credentials there"
            ) from exc
        except UNREACHABLE as exc:
            reason = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
            origin = urlsplit(url)
            raise errors.RetryableSourceError(f"cannot reach {origin.scheme}://{origin.netloc} ({reason})") from exc

    async def close(self) -> None:
        await self._session.close()
