"""The one retry loop: capped exponential backoff with full jitter, never sooner than the
server asked. Both edges use it: the Twilio client (http.py) and the archive (sql/edge.py).

An operation says a failure is worth another try by raising one of `retry_on` (an error
may carry the server's `retry_after` in seconds); anything else passes straight through.
When the attempts or the time budget run out, the last failure is raised as it was."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from sync import logs

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    attempts: int | None = 8  # tries in all; None: until `budget` runs out
    base: float = 0.5  # seconds; the first retry waits up to this, then it doubles
    cap: float = 30.0  # never more than this between tries (unless the server asks for more)
    budget: float | None = None  # seconds after the first try beyond which we stop

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Full jitter spreads the retries of many workers; a server's Retry-After is a floor."""
        backoff = random.uniform(0, min(self.cap, self.base * 2**attempt))
        return max(backoff, retry_after or 0.0)


async def retrying(
    operation: Callable[[], Awaitable[T]],
    policy: Backoff,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    *,
    log: logging.Logger | logs.EventLogger,
    what: str,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> T:
    """`await operation()` until it succeeds, fails with something not in `retry_on`, or the policy is spent."""
    started = time.monotonic()
    attempt = 0
    while True:
        try:
            return await operation()
        except retry_on as exc:
            attempt += 1
            delay = policy.delay(attempt - 1, getattr(exc, "retry_after", None))
            if (policy.attempts is not None and attempt >= policy.attempts) or (
                policy.budget is not None and time.monotonic() - started + delay > policy.budget
            ):
                raise
            logs.get(log).warning("retry", what=what, attempt=attempt, delay=round(delay, 3), cause=str(exc))
            if on_retry is not None:
                on_retry(exc, attempt)
            await anyio.sleep(delay)
