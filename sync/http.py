"""The HTTP edge: one client per account over a transport (by default one aiohttp session),
Basic auth, and what to retry.

The client decides what is asked and what an answer means; the transport (httpx's seam, see
sync/transports.py) only carries a GET there and back, so a test can put a fake of its own at
the network edge.

Retryable (through sync.retry, never sooner than Retry-After): 429 and 5xx, timeouts, dropped
connections and bodies that are not JSON. Fatal: every other 4xx, a redirect, a certificate
that does not verify, or a link to a foreign host.
Credentials go only to the configured base URLs (pagination.resolve refuses the rest), TLS is
always verified (aiohttp's default, never turned off here) and redirects are not followed,
so an Authorization header cannot be carried anywhere else."""

from __future__ import annotations

import base64
import json
import time
from email.utils import parsedate_to_datetime
from datetime import datetime, timedelta, timezone
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import orjson

from sync import errors, logs, pagination, transports
from sync.budget import Budget
from sync.config import DEFAULT_CONCURRENCY, Secret, TwilioSettings
from sync.observe import NOBODY, Observer
from sync.retry import Backoff, retrying

log = logs.get(__name__)
T = TypeVar("T")

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
RETRY = Backoff(attempts=10, base=0.5, cap=30.0)
# Retry-After is in whole seconds and our clock is not the server's: waiting this much
# longer means we are never back early.
RETRY_AFTER_MARGIN = 0.05
# Twilio documents it as how close the account is to its concurrency limit.
CONCURRENT_HEADER = "Twilio-Concurrent-Requests"
HEADERS = {"User-Agent": "twilio-archive", "Accept": "application/json"}


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


def decode_json(body: bytes) -> Any:
    """orjson for speed; the stdlib for what orjson refuses but JSON allows (a lone UTF-16
    surrogate escape such as "\\ud800"), which parsing.storable() then replaces."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)  # raises ValueError (JSONDecodeError, UnicodeDecodeError) if truly malformed


def retry_cause(exc: BaseException) -> str:
    """A retry's cause in a word, for metrics: the HTTP status, else what went wrong."""
    status = getattr(exc, "status", None)
    if status:
        return str(status)
    return "connection" if isinstance(exc.__cause__, transports.UNREACHABLE) else "malformed"


class TwilioClient:
    """Fetches JSON pages from the configured Twilio base URLs, for one account.

    Every request of the account waits while the server has asked it to (Retry-After), and
    goes through the account's concurrency budget (budget.py): at most `concurrency` in flight,
    fewer after 429s. Twilio's limits are per account, so its 429 is a signal to all of our
    requests, not just the one that received it.

    `transport`: where the GETs go. Without one, the client makes a
    transports.AiohttpTransport (with `timeout`) when its block opens and closes it when the
    block ends; a transport given is its giver's to close."""

    def __init__(
        self,
        settings: TwilioSettings,
        *,
        retry: Backoff = RETRY,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = 60.0,
        observer: Observer = NOBODY,
        transport: transports.Transport | None = None,
    ) -> None:
        self._settings = settings
        self._retry = retry
        self.budget = Budget(concurrency, account_sid=settings.account_sid, observer=observer)
        self._resume_at = 0.0  # time.monotonic() before which the server asked us not to call
        self._timeout = timeout
        self._authorization = basic_authorization(settings.username, settings.password)
        self._comms_authorization = basic_authorization(*settings.comms_credentials())
        self._transport = transport
        self._own_transport = transport is None  # one owner: whoever made it closes it
        # Told every answer, every retry, and the wall-clock end of each new pause (which
        # machinery keeps beyond this process).
        self._observer = observer

    def __repr__(self) -> str:
        return f"TwilioClient(account_sid={self._settings.account_sid!r})"

    async def __aenter__(self) -> TwilioClient:
        if self._own_transport:
            self._transport = transports.AiohttpTransport(self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own_transport and self._transport is not None:
            await self._transport.close()
            self._transport = None

    def base_url(self, api: str) -> str:
        return self._settings.comms_base_url if api == "comms" else self._settings.api_base_url

    async def get_json(self, api: str, ref: str) -> Any:
        """GET one resource (a relative URL, or an absolute one on the base URL's origin) as JSON."""
        return await self.get_page(api, ref, lambda url, body: body)

    async def get_page(self, api: str, ref: str, parse: Callable[[str, Any], T], *,
                       retry_url: Callable[[str, int], str] | None = None, priority: float = 0.0) -> T:
        """GET a list page and `parse(url, body)` it, retrying what may succeed later, a page
        whose JSON does not have the documented shape included. Before each retry,
        `retry_url(url, answers 500 in a row)` may change the request (the scan plan asks for a
        smaller page); `url` is the relative URL actually fetched, which the caller pages on
        from, so that a smaller size sticks. `priority`: the account's budget admits lower first."""
        url = pagination.resolve(self.base_url(api), ref)
        failed_500 = 0

        async def once() -> T:
            nonlocal url, failed_500
            if retry_url is not None and (changed := retry_url(url, failed_500)) != url:
                url, failed_500 = changed, 0
                log.warning("http.shrink_page", size=pagination.page_size(url), path=pagination.relative(url))
            try:
                return parse(pagination.relative(url), await self._get_once(url, api, priority))
            except errors.RetryableSourceError as exc:
                failed_500 = failed_500 + 1 if exc.status == 500 else 0
                raise

        try:
            return await retrying(once, self._retry, errors.RetryableSourceError, log=log,
                                  what=f"GET {pagination.relative(url)}", on_retry=self._told_retry)
        except errors.RetryableSourceError as exc:
            raise errors.RetryableSourceError(
                f"gave up on {pagination.relative(url)} after {self._retry.attempts} attempts: {exc}", status=exc.status
            ) from exc

    def _told_retry(self, exc: BaseException, attempt: int) -> None:
        self._observer.retry("twilio", retry_cause(exc))

    def _pause(self, seconds: float) -> bool:
        """No request of the account for `seconds`; whether that extends the current pause."""
        resume_at = time.monotonic() + seconds
        if resume_at <= self._resume_at:
            return False
        self._resume_at = resume_at
        return True

    def pause_until(self, until: datetime | None) -> None:
        """Make no request before `until` (a pause a previous run was asked for)."""
        if until is not None:
            self._pause((until - datetime.now(timezone.utc)).total_seconds())

    async def _wait_for_server(self) -> None:
        while (wait := self._resume_at - time.monotonic()) > 0:
            await anyio.sleep(wait)

    async def _get_once(self, url: str, api: str, priority: float = 0.0) -> Any:
        assert self._transport is not None, "use TwilioClient as an async context manager"
        async with self.budget.slot(priority) as slot:
            await self._wait_for_server()
            authorization = self._comms_authorization if api == "comms" else self._authorization
            headers = {**HEADERS, "Authorization": authorization.reveal()}
            async with self._transport.get(url, headers) as resp:
                status = resp.status
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                # Pause the account at once: other requests must not go out while we read.
                paused = retry_after is not None and self._pause(retry_after + RETRY_AFTER_MARGIN)
                # The window moves at once too, before the slot is given back.
                self.budget.answered(slot, status, resp.headers.get(CONCURRENT_HEADER))
                body = await resp.read()
        self._observer.response(api, status)
        if paused:
            until = datetime.now(timezone.utc) + timedelta(seconds=retry_after + RETRY_AFTER_MARGIN)
            await self._observer.pause(self._settings.account_sid, until)
        return self._decode(url, status, retry_after, body)

    def _decode(self, url: str, status: int, retry_after: float | None, body: bytes) -> Any:
        """A 200's JSON, or the error its status and body say."""
        if status == 200:
            try:
                return decode_json(body)
            except ValueError as exc:
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
        if status == 400 and pagination.page_token(url) is not None:
            # Tokens expire and the documents give no code for it: any 400 to a request that
            # only differs from a valid one by its token means the token is no good.
            raise errors.StalePageTokenError(
                f"Twilio rejected the page token of {pagination.relative(url)} ({detail})", status=status, code=code
            )
        raise errors.FatalSourceError(
            f"Twilio rejected GET {pagination.relative(url)} ({detail})", status=status, code=code
        )
