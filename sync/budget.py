"""One account's concurrency budget: how many of its requests may be in flight, found by AIMD.

Twilio limits the REST requests an account has in flight at once and answers those beyond the
limit with 429 (error 20429); it publishes no number for it. So the budget starts at the
user's cap (`--concurrency`) and learns the account's room as TCP learns a path's:

- multiplicative decrease: a 429 halves the window (never below 1), at most once per round: a
  request admitted before the last decrease was in flight when it happened, and its 429 says
  nothing new, so a burst of 429s halves the window once, not down to 1;
- additive increase: every other answer (the server had room for it; 5xx and dropped
  connections say nothing either way) adds 1/window, so the window grows by about one per
  window's worth of answers, up to the cap;
- Twilio-Concurrent-Requests, on a 429: when it reports n requests of the account in flight
  and more than the m of ours (this one included), other applications share the account and
  held n - m. Twilio refused at n, so while they hold theirs at most m - 1 were left for us:
  the window drops to at most max(1, m - 1), below what halving alone would give when we were
  not using our whole window. The last and the peak value seen are kept for the metrics.

A Retry-After is a separate floor, kept by the client (http.py) for the whole account. `Window`
is the arithmetic, without I/O or a clock; `Budget` admits requests through it, logs the
decreases (`budget.decrease`) and the return to the cap (`budget.full`), and tells the
observer (`Observer.budget`) the window after each answer.

A second, separate bound: `PagesInHand` holds an account's pages asked for, or fetched and not
yet saved, to PAGES_IN_HAND times the cap. Each such page holds a `Ticket` from before its
request until it is saved (or dropped), given back once, when the `with` block that holds it
ends. The client's `Budget` carries its account's `PagesInHand` (`budget.pages`), since the bound
follows the cap; the scans' chains (worker.py) take the tickets, the client never does.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio

from sync import logs
from sync.observe import NOBODY, Observer

log = logs.get(__name__)

# Pages in hand per request the cap allows: in flight, or fetched and waiting to be parsed and
# saved. Enough of a backlog to keep the CPU busy while the requests are out (at 500 ms a request,
# twice the cap was measurably slower, bench --latency-ms), and bounded: memory and what a kill
# loses grow with the cap, not with how many slices a scan has.
PAGES_IN_HAND = 3
# Float sums of 1/window drift below whole numbers (5 x 0.2 = 0.9999...); this absorbs it.
_EPSILON = 1e-9


@dataclass
class Window:
    """The AIMD arithmetic: the window's size and its round (decreases so far). No I/O."""

    limit: int
    size: float = field(init=False)  # fractional: the additive increase accumulates in it
    round: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not (isinstance(self.limit, int) and not isinstance(self.limit, bool) and self.limit >= 1):
            raise ValueError(f"a concurrency budget must allow at least 1 request, got {self.limit!r}")
        self.size = float(self.limit)

    @property
    def capacity(self) -> int:
        """Requests that may be in flight now: 1..limit."""
        return max(1, min(self.limit, int(self.size + _EPSILON)))

    @property
    def full(self) -> bool:
        return self.capacity == self.limit

    def grow(self) -> bool:
        """An answer the server had room for: add 1/window. Whether this made the window full."""
        if self.full:
            return False
        self.size = min(float(self.limit), self.size + 1.0 / self.capacity)
        return self.full

    def shrink(self, admitted_in: int, ours: int, concurrent: int | None = None) -> bool:
        """A 429 to a request admitted in round `admitted_in`, while `ours` of our requests were in
        flight (it included) and Twilio-Concurrent-Requests said `concurrent`. Whether the window
        shrank: not for a request admitted before the last decrease."""
        if admitted_in < self.round:
            return False
        size = max(1.0, float(self.capacity // 2))
        if concurrent is not None and concurrent > ours:
            size = min(size, float(max(1, ours - 1)))
        self.size = size
        self.round += 1
        return True


def parse_concurrent(value: str | None) -> int | None:
    """Twilio-Concurrent-Requests as a count; None when absent or not a whole number >= 0."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if value.isdigit() else None


@dataclass(eq=False)
class Slot:
    """One admitted request: the round it was admitted in, for `Budget.answered`."""

    round: int


class Admission:
    """Lets in while fewer than `capacity()` are inside, the lowest `priority` first, then in
    order of arrival; a waiter cancelled gives its place back."""

    def __init__(self, capacity: Callable[[], int]) -> None:
        self.capacity = capacity
        self.inside = 0
        self._waiters: list[tuple[float, int, anyio.Event]] = []  # a heap
        self._arrivals = itertools.count()

    async def enter(self, priority: float = 0.0) -> None:
        if not self._waiters and self.inside < self.capacity():
            self.inside += 1
            return
        waiter = (priority, next(self._arrivals), anyio.Event())
        heapq.heappush(self._waiters, waiter)
        try:
            await waiter[2].wait()
        except BaseException:
            if waiter[2].is_set():  # let in as we were cancelled: pass the place on
                self.leave()
            else:
                self._waiters.remove(waiter)
                heapq.heapify(self._waiters)
            raise

    def leave(self) -> None:
        self.inside -= 1
        self.wake()

    def wake(self) -> None:
        """Let in as many as there is room for (counted inside at once, so that no newcomer takes
        the room meanwhile)."""
        while self._waiters and self.inside < self.capacity():
            self.inside += 1
            heapq.heappop(self._waiters)[2].set()


class Ticket:
    """One page's place among its account's pages in hand, from before its request until it is
    saved or dropped. Given back in one place: the end of the `with` block that holds it."""

    def __init__(self, places: Admission) -> None:
        self._places: Admission | None = places

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        places, self._places = self._places, None
        if places is not None:  # once, whatever ends the block
            places.leave()


class PagesInHand:
    """Bounds an account's pages in hand: asked for, or fetched and not yet saved, at most
    `limit`. Requests in flight leave room to parse and save the pages before them, but no more
    than that: however many slices a scan runs, memory and what a kill loses stay bounded."""

    def __init__(self, limit: int) -> None:
        self._places = Admission(lambda: limit)

    @property
    def held(self) -> int:
        return self._places.inside

    async def take(self, priority: float = 0.0) -> Ticket:
        """Wait for a place (before those of a higher `priority`); hold it with `with ticket:`."""
        await self._places.enter(priority)
        return Ticket(self._places)


class Budget:
    """Admits an account's requests while fewer than the window are in flight, the lowest
    `priority` first, then first come first served; `answered` moves the window. One per
    TwilioClient, i.e. per account, with the account's `pages` in hand (PAGES_IN_HAND x the cap)."""

    def __init__(self, limit: int, *, account_sid: str = "", observer: Observer = NOBODY) -> None:
        self.window = Window(limit)
        self.account_sid = account_sid
        self.concurrent: int | None = None  # Twilio-Concurrent-Requests, last seen
        self.peak_concurrent = 0
        self.lowest = self.window.capacity  # the smallest window so far, for tests and the bench
        self._observer = observer
        self._requests = Admission(lambda: self.window.capacity)
        self.pages = PagesInHand(PAGES_IN_HAND * self.window.limit)

    @property
    def limit(self) -> int:
        return self.window.limit

    @property
    def in_flight(self) -> int:
        return self._requests.inside

    @property
    def capacity(self) -> int:
        return self.window.capacity

    def __repr__(self) -> str:
        return f"Budget(window={self.capacity}/{self.limit}, in_flight={self.in_flight})"

    @asynccontextmanager
    async def slot(self, priority: float = 0.0) -> AsyncIterator[Slot]:
        """Wait for room (before those of a higher `priority`), hold it for the block."""
        await self._requests.enter(priority)
        try:
            yield Slot(self.window.round)
        finally:
            self._requests.leave()

    def answered(self, slot: Slot, status: int, concurrent_header: str | None = None) -> None:
        """Twilio answered the request of `slot` with `status` (and perhaps Twilio-Concurrent-Requests)."""
        concurrent = parse_concurrent(concurrent_header)
        if concurrent is not None:
            self.concurrent = concurrent
            self.peak_concurrent = max(self.peak_concurrent, concurrent)
        window = self.window
        if status == 429:
            before = window.capacity
            if window.shrink(slot.round, self.in_flight, concurrent):
                self.lowest = min(self.lowest, window.capacity)
                log.info("budget.decrease", account=self.account_sid, window=window.capacity, previous=before,
                         cause="429", in_flight=self.in_flight, concurrent=concurrent)
        elif status < 500 and window.grow():
            log.info("budget.full", account=self.account_sid, window=window.capacity,
                     peak_concurrent=self.peak_concurrent)
            self._requests.wake()
        elif status < 500:
            self._requests.wake()  # the window may have grown by a whole request
        self._observer.budget(self.account_sid, window.capacity, self.in_flight, self.concurrent)

