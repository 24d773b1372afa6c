"""The scan plan: which list request comes next, decided from the pages already read. Pure.

A scan is a small state machine, or rather a few running at once: its head, which starts at the
list's first URL, and the time slices the pages split off. Each parsed page moves its chain to
its next `State` (the next URL of the same query, the list's top again, or done) and may spawn
slices. A state is plain data (`State.to_json`), saved as its chain's checkpoint in the page's
own transaction, with the slices the page spawned, so a scan killed at any instant resumes
exactly where each of its chains was. `Plan.advance` is a function of the state and the page
alone: the one thing a scan remembers beyond its checkpoints, the positions it has followed
(a loop guard), is `pagination.LoopGuard`, kept by the worker.

The v1 lists are filtered by creation time on the server: the plan follows `pagination.next` to
the end, and slices the window by `startDate`/`endDate`. The legacy list cannot be filtered by
creation time and keeps up to 400 days, so the plan reads its order from the pages. One room
each, to be read in this order:

- `state`: a chain's `State` and `Phase`, its stored JSON form, and the `Step` a page gives;
- `scope`: what a scan's states share (list, account, window, page size) and its requests;
- `slices`: time slices: a chain's range, how a dense range splits, ownership, priority;
- `order`: the legacy list's order: evidence in (`read`), a `Decision` out (`decide`);
- `legacy`: the legacy head's steps, from those decisions.

A record's place in the list is what `Page.times` carries: its (date_created, date_sent) as
epoch seconds, None where absent or unparseable, in the order served."""

from __future__ import annotations

import dataclasses

from sync import pagination
from sync.models import Page, Window
from sync.plan import legacy, slices
from sync.plan.order import SENT_MARGIN, Evidence, Order
from sync.plan.scope import Scope
from sync.plan.slices import DAY, MAX_SPLIT, SLICE_PAGES, UNKNOWN_LENGTH, Chain
from sync.plan.state import Phase, State, Step
from sync.sources import Source

# Twilio sometimes answers 500 for large pages: after this many in a row for one page, the
# plan asks for half as many records, down to MIN_PAGE_SIZE.
SHRINK_AFTER = 2
MIN_PAGE_SIZE = 25

ORDERS = tuple(Order)

__all__ = ["DAY", "MAX_SPLIT", "MIN_PAGE_SIZE", "ORDERS", "SENT_MARGIN", "SHRINK_AFTER", "SLICE_PAGES",
           "UNKNOWN_LENGTH", "Chain", "Evidence", "Order", "Phase", "Plan", "State", "Step", "first_state",
           "retry_url"]


class Plan:
    """How one scan pages through one list: its first state, and the step after each page of
    any of its chains (one Plan serves all of a scan's chains at once). Holds no state of its own."""

    def __init__(self, source: Source, account_sid: str, window: Window, page_size: int, base_url: str) -> None:
        self.scope = Scope(source, account_sid, window, page_size)
        self.base_url = base_url

    def first(self) -> State:
        return self.scope.first()

    def restart(self, state: State) -> State:
        """The same chain from its first page (its page token went stale); rows stay archived,
        and so does what was learned of the order (a slice keeps its floor)."""
        if state.chain is not None:
            chain = dataclasses.replace(state.chain, last=None)
            return State(self.scope.range_url(chain), state.phase, state.evidence, chain)
        url = legacy.sent_url(self.scope, state.evidence) if state.phase == Phase.SENT else self.first().url
        return State(url, state.phase, state.evidence.positions_reset())

    def advance(self, state: State, fetched: str, page: Page) -> Step:
        """The state after `page`, fetched from `fetched` (the URL really asked, page size included)."""
        link = page.next_url
        if link is not None:
            # Refuse a foreign link before it becomes a checkpoint we could never leave.
            pagination.resolve(self.base_url, link)
        if state.chain is not None:
            return self._chain(state, link, page)
        if not self.scope.legacy:  # a v1 checkpoint of an earlier release: follow it
            return Step(State(link))
        return legacy.step(self.scope, state, link, page)

    def _chain(self, state: State, link: str | None, page: Page) -> Step:
        """Follow the query to its end, or to its floor while newest first; after its first
        page, hand the older part of a dense range to new slices."""
        assert state.chain is not None
        first_page = state.chain.pages == 0
        after = state.chain.read(page.times)
        if link is None or after.past_floor:
            return Step(State(None, state.phase, state.evidence, after))
        spawn: tuple[State, ...] = ()
        if after.span is not None and first_page:
            after, ranges = slices.split(after)
            spawn = tuple(self.scope.slice(lo, hi) for lo, hi in ranges)
        return Step(State(link, state.phase, state.evidence, after), spawn=spawn)


def first_state(source: Source, account_sid: str, window: Window, page_size: int) -> State:
    """Where a new scan starts: the list's top (v1: one query over the whole window, sliced
    once its first page shows how dense it is)."""
    return Scope(source, account_sid, window, page_size).first()


def retry_url(url: str, failed_500: int) -> str:
    """The request to retry after `failed_500` answers 500 in a row: the same one, or after
    SHRINK_AFTER of them a smaller page. Both APIs' tokens name a position, not an offset, so
    the token stays valid at any size."""
    size = pagination.page_size(url)
    if failed_500 >= SHRINK_AFTER and size is not None and size > MIN_PAGE_SIZE:
        return pagination.with_page_size(url, max(MIN_PAGE_SIZE, size // 2))
    return url
