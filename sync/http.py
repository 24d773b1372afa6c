"""The HTTP edge: one aiohttp session, Basic auth, and the only place that retries.

Retryable: 429 and 5xx (never sooner than Retry-After), timeouts, dropped connections and
bodies that are not JSON. Fatal: every other 4xx, a redirect, or a link to a foreign host.
Credentials go only to the configured base URLs (pagination.resolve refuses the rest), TLS is
always verified (aiohttp's default, never turned off here) and redirects are not followed,
so an Authorization header cannot be carried anywhere else."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anyio
import orjson

from sync import errors, pagination
from sync.config import Secret, TwilioSettings

log = logging.getLogger("sync.http")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 8  # tries per request before the scan gives up (it resumes from its checkpoint)
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Capped exponential backoff with full jitter, but never sooner than Retry-After."""
        backoff = random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
        return max(backoff, retry_after or 0.0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def describe_error(status: int, body: bytes) -> tuple[int | None, str]:
    """Twilio's error code and message from either API's error body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, body[:200].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        if isinstance(data.get("errors"), list) and data["errors"] and isinstance(data["errors"][0], dict):
            data = data["errors"][0]  # v1: {"errors": [{code, message, info_url, context}]}
        code = data.get("code")
        return (code if isinstance(code, int) else None), str(data.get("message") or "")
    return None, ""


def basic_authorization(username: str, password: Secret) -> Secret:
    """The Basic Authorization header value, itself a secret.

    Built here rather than with aiohttp.BasicAuth, which aiohttp 3.14 deprecates."""
    token = base64.b64encode(f"{username}:{password.reveal()}".encode()).decode("ascii")
    return Secret(f"Basic {token}")


class TwilioClient:
    """Fetches JSON pages from the configured Twilio base URLs."""

    def __init__(
        self,
        settings: TwilioSettings,
        *,
        retry: RetryPolicy = RetryPolicy(),
        concurrency: int = 8,
        timeout: float = 60.0,
    ) -> None:
        self._settings = settings
        self._retry = retry
        self._limiter = anyio.CapacityLimiter(concurrency)  # requests in flight for this account
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=10)
        self._authorization = basic_authorization(settings.username, settings.password)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> TwilioClient:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            headers={"User-Agent": "twilio-archive", "Accept": "application/json"},
            connector=aiohttp.TCPConnector(limit=32),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def base_url(self, api: str) -> str:
        return self._settings.comms_base_url if api == "comms" else self._settings.api_base_url

    async def get_json(self, api: str, ref: str) -> Any:
        """GET a page (a relative URL, or an absolute one on the base URL's origin) as JSON."""
        url = pagination.resolve(self.base_url(api), ref)
        last: errors.RetryableSourceError | None = None
        for attempt in range(self._retry.attempts):
            if last is not None:
                delay = self._retry.delay(attempt - 1, last.retry_after)
                log.warning("http.retry cause=%r attempt=%d delay=%.2f path=%s", str(last), attempt, delay, pagination.relative(url))
                await anyio.sleep(delay)
            try:
                return await self._get_once(url)
            except errors.RetryableSourceError as exc:
                last = exc
        assert last is not None
        raise errors.RetryableSourceError(
            f"gave up after {self._retry.attempts} attempts at {pagination.relative(url)}: {last}",
            status=last.status,
        )

    async def _get_once(self, url: str) -> Any:
        assert self._session is not None, "use TwilioClient as an async context manager"
        try:
            async with self._limiter:
                headers = {"Authorization": self._authorization.reveal()}
                async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
                    body = await resp.read()
                    status = resp.status
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            reason = type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"
            origin = urlsplit(url)
            raise errors.RetryableSourceError(f"cannot reach {origin.scheme}://{origin.netloc} ({reason})") from exc
        if status == 200:
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise errors.RetryableSourceError(f"malformed JSON in a 200 response ({exc})") from exc
        code, message = describe_error(status, body)
        detail = f"HTTP {status}" + (f", code {code}" if code else "") + (f": {message}" if message else "")
        if status in RETRYABLE_STATUS:
            raise errors.RetryableSourceError(f"Twilio answered {detail}", retry_after=retry_after, status=status)
        if status in (401, 403):
            raise errors.FatalSourceError(
                f"Twilio refused the credentials ({detail}); check TWILIO_ACCOUNT_SID and "
                "TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)",
                status=status, code=code,
            )
        if 300 <= status < 400:
            raise errors.FatalSourceError(
                f"Twilio answered a redirect (HTTP {status}) for {pagination.relative(url)}; not followed, "
                "so credentials stay with the configured base URL", status=status,
            )
        raise errors.FatalSourceError(
            f"Twilio rejected GET {pagination.relative(url)} ({detail})", status=status, code=code
        )
