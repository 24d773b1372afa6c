"""A scan's chains of pages, read at once: its head (the list from its top) and the time slices
the scan plan splits off (sync/plan/), each from its checkpoint until its plan is done or the
scan is told to stop. worker.py opens the scan and runs its chains through `Chains`.

Owns: the pages in hand (a `budget.Ticket` each, from before its request until its save), their
order (a chain asks for page N+1 once page N is answered, its saves wait for nothing but the page
before and their turn at the store: saves and errors in order; a new slice's first page is asked
for while the page that split it off is saved, and nothing keeps it once its chain has saved it:
the chain outlives it, and every slice running would hold one, issue 19),
the stop (no request after it, every page in hand saved), restarts after a stale page token, the
loop guard (`pagination.LoopGuard`), and the errors, which the task groups carry. May not touch:
SQL (it saves through `store.pages` and `store.scans`), HTTP (it asks `client.get_page`), or the
decisions of the plan (`plan.Plan.advance`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup

from sync import budget, errors, logs, pagination, plan, sources
from sync.handoff import Handoff, Prefetched
from sync.http import TwilioClient
from sync.models import ChainId, Counts, Head, Page, Scan, Slice
from sync.progress import StreamProgress
from sync.store import Store

if TYPE_CHECKING:
    from sync.worker import ScanOptions

log = logs.get(__name__)

MAX_RESTARTS = 3  # stale page tokens in one run before we stop trusting the API


class Chains:
    """A scan's chains of pages, read at once: each from its checkpoint until its plan is done or
    `options.stop` is set, each slice a page splits off asking for its first page while that
    page is saved (`_early`), and reading on once the save has created it.

    Each page in hand is one task (`_page`) that holds the page's `budget.Ticket` from before its
    request until its save, and gives it back when it ends, however it ends. It starts the
    chain's next page as soon as it is answered: a chain that can only read one page after
    another (the legacy head's never-sent block, the scan's critical path) waits for the API,
    not for its saves; the tickets, taken the longest chains first, bound how far ahead any chain
    runs (memory and what a kill loses: the pages in hand). The task groups carry the errors: a
    failing chain stops the others' requests, waits until they have saved the pages they hold,
    and ends the scan with its error."""

    def __init__(self, store: Store, client: TwilioClient, source: sources.Source, scan: Scan, scan_plan: plan.Plan,
                 counters: StreamProgress, options: ScanOptions) -> None:
        self.store, self.client, self.source, self.scan, self.plan = store, client, source, scan, scan_plan
        self.counters, self.options = counters, options
        self.head = plan.State.from_json(scan.cursor, scan.plan)  # as last committed
        self.guard = pagination.LoopGuard()  # the positions the scan's chains have followed
        self.restarts = 0
        self.stopping = False  # no chain fetches another page
        self._fetching: set[anyio.CancelScope] = set()
        self._running: set[anyio.Event] = set()  # one per chain not yet ended
        self._group: TaskGroup | None = None

    async def run(self, pending: list[tuple[ChainId, plan.State]]) -> None:
        """Read these chains, and every slice their pages split off, until all are done or stopped."""
        try:
            async with anyio.create_task_group() as outer:
                if self.options.stop is not None:
                    outer.start_soon(self._stop_when_told, self.options.stop)
                async with anyio.create_task_group() as self._group:
                    for chain, state in pending:
                        self._start(chain, state)
                outer.cancel_scope.cancel()  # every chain is over: the stop watcher is not needed
        except ExceptionGroup as group:
            raise first_error(group)  # noqa: B904 - the group is its context

    def _start(self, chain: ChainId, state: plan.State) -> None:
        assert self._group is not None
        if isinstance(chain, Slice):
            self.counters.running += 1
        self._group.start_soon(self._chain, chain, state)

    async def _early(self, handoff: Handoff) -> None:
        """The first page of a slice split off by a page being saved, asked for at once: the
        slice's chain starts with it once that save has created the slice, and drops it if the
        save did not. It holds a ticket like any page in hand, so the bounds stay as they are."""
        state = handoff.state
        queued = time.monotonic()
        ticket = await self._ticket(state)
        first = None
        # The ticket is given back by the chain's first page as it is saved, or here, however this
        # ends (a Ticket ends once).
        with ticket or nullcontext():
            if ticket is not None:
                asked = time.monotonic()
                # No name here may keep the page: this frame lasts as long as the slice's chain,
                # long after the page is saved (`Prefetched.take`).
                try:
                    first = Prefetched(ticket, await self._fetch(state), None, queued, asked)  # got None: stopped
                except Exception as exc:  # the chain raises it, in its order, as if it had asked
                    first = Prefetched(ticket, None, exc, queued, asked)
            await handoff.ready.wait()
            if handoff.chain is not None:
                self.counters.running += 1
                await self._chain(handoff.chain, state, first)

    async def _stop_when_told(self, stop: anyio.Event) -> None:
        # Stop asking for pages, at once (even mid-retry); each chain saves what came.
        await stop.wait()
        self.stopping = True
        for scope in self._fetching:
            scope.cancel()

    async def _chain(self, chain: ChainId, state: plan.State, first: Prefetched | None = None) -> None:
        saved = Saved(state)
        ended = anyio.Event()
        self._running.add(ended)
        try:
            await self._read(chain, saved, first)
        except Exception:
            # Raised once the other chains have saved the pages they hold (raising at once would
            # cancel them mid-save); they fetch no more.
            self.stopping = True
            self._end(ended)
            while self._running:
                await next(iter(self._running)).wait()
            raise
        finally:
            self._end(ended)
            if isinstance(chain, Slice):
                self.counters.running -= 1
                self.counters.slices_done += int(saved.state.done)

    def _end(self, ended: anyio.Event) -> None:
        self._running.discard(ended)
        ended.set()

    async def _read(self, chain: ChainId, saved: Saved, first: Prefetched | None) -> None:
        restarts = 0
        while True:
            try:
                await self._pages(chain, saved, first)
                return
            except errors.StalePageTokenError as exc:
                # The position is lost, not the work: every page saved so far stays archived,
                # and a second pass over them writes nothing (unchanged rows are skipped).
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise errors.SourceError(f"{self.source.stream}: gave up after {MAX_RESTARTS} restarts: {exc}") from exc
                again = self.plan.restart(saved.state)
                await self.store.scans.restart(self.scan, chain, saved.state, again)
                self.guard.forget()
                saved.state = again
                first = None
                self.restarts += 1
                log.warning("scan.restart", stream=self.source.stream, scan=self.scan.id, slice=_slice_id(chain),
                            restarts=restarts, cause=str(exc))

    async def _pages(self, chain: ChainId, saved: Saved, first: Prefetched | None) -> None:
        """Fetch and save the chain's pages from `saved.state` on, until its plan is done or the
        scan stops; `saved.state` is always what the database holds."""
        if saved.state.done:
            return
        try:
            async with anyio.create_task_group() as pages:
                pages.start_soon(self._page, pages, chain, saved, saved.state, None, first)
        except ExceptionGroup as group:
            raise first_error(group)  # noqa: B904 - the group is its context

    async def _page(self, pages: TaskGroup, chain: ChainId, saved: Saved, state: plan.State,
                    previous: anyio.Event | None, first: Prefetched | None = None) -> None:
        """One page of the chain, from its request to its save, holding its ticket all along;
        `previous` is set once the page before it is saved: the saves, and the errors, go in order.
        `first`: the chain's first page, already asked for (`_early`)."""
        queued = first.queued if first is not None else time.monotonic()
        ticket = first.ticket if first is not None else await self._ticket(state)
        if ticket is None:
            return  # stopped
        with ticket:
            asked = first.asked if first is not None else time.monotonic()
            try:
                got = first.take() if first is not None else await self._fetch(state)
            except Exception:
                if previous is not None:
                    await previous.wait()  # the page before is saved first, then the chain ends
                raise
            if got is None:
                return  # stopped
            step, page = got
            saved_here = anyio.Event()
            if not step.state.done and not self.stopping:
                # The next request goes out now, not once the pages before are saved: a chain
                # that must read its pages one after another (the legacy head's never-sent
                # block) waits for the API alone; its tickets bound how far it runs ahead.
                pages.start_soon(self._page, pages, chain, saved, step.state, saved_here)
            if previous is not None:
                await previous.wait()
            answered = time.monotonic()
            # Once stopping, no slice asks early: the save starts its slices as it always did.
            handoffs = [] if self.stopping else [Handoff(new) for new in step.spawn]
            try:
                assert self._group is not None
                for handoff in handoffs:
                    self._group.start_soon(self._early, handoff)
                await self._save(chain, saved, state, step, page, handoffs)
            finally:
                for handoff in handoffs:
                    handoff.give(None)  # the save failed: its slices do not exist
            saved_here.set()
            # The timeline of a scan's requests (monotonic seconds), to find its critical path.
            log.debug("scan.page", stream=self.source.stream, slice=_slice_id(chain), phase=state.phase,
                      priority=state.priority, queued=queued, asked=asked, answered=answered,
                      saved=time.monotonic(), seen=page.seen, spawned=len(step.spawn), done=step.state.done)

    async def _ticket(self, state: plan.State) -> budget.Ticket | None:
        """A place among the account's pages in hand for the chain's next page; None when stopped."""
        with self._stoppable():
            if not self.stopping:
                return await self.client.budget.pages.take(state.priority)
        return None

    async def _fetch(self, state: plan.State) -> tuple[plan.Step, Page] | None:
        """The chain's next page, planned and reduced to the records it owns; None when stopped."""
        source, scan, options = self.source, self.scan, self.options

        def parse(fetched: str, body: object) -> tuple[str, Page]:
            return fetched, sources.parse_page(source, body, scan.account_sid, scan.window, fetched, options.bodies)

        with self._stoppable():
            fetched, page = await self.client.get_page(source.api, state.url, parse, retry_url=plan.retry_url,
                                                       priority=state.priority)
            step = self.plan.advance(state, fetched, page)
            self.guard.follow(step.state.phase, step.state.url, page.next_url)
            if step.warning:
                log.warning("scan.unbounded", account=scan.account_sid, stream=source.stream, scan=scan.id,
                            reason=step.warning)
            if page.rejected:
                log.warning("scan.rejected", stream=source.stream, count=len(page.rejected), cursor=state.url)
            return step, sources.owned(source, page, step.state.owns)
        return None

    @contextmanager
    def _stoppable(self) -> Iterator[None]:
        """A block a stop cancels at once, even mid-retry: a request or the wait for its place,
        never a save."""
        with anyio.CancelScope() as scope:
            self._fetching.add(scope)
            try:
                yield
            finally:
                self._fetching.discard(scope)

    async def _save(self, chain: ChainId, saved: Saved, before: plan.State, step: plan.Step, page: Page,
                    handoffs: list[Handoff]) -> None:
        """One page with its chain's checkpoint and the slices it split off, which start at once."""
        scan, options = self.scan, self.options
        async with self.store.saving(before.priority):
            written, slices = await self.store.pages.save(self.source, scan, chain, before, step.state, page,
                                                          spawn=step.spawn, seen=options.keep_seen)
        saved.state = step.state
        if isinstance(chain, Head):
            self.head = step.state
            self.counters.reached = page.reached or self.counters.reached
        counts = Counts.of_page(page, written)
        self.counters.counts += counts
        options.observer.page_saved(scan.account_sid, self.source.stream, counts)
        # Each slice starts with the first page asked for while the page was saved, if that was
        # for the very state saved (a retried save that had committed returns no slices: the
        # scan's next round finds them, and the pages asked early are dropped).
        early = {h.state.url: h for h in handoffs}
        for new, state in slices:
            handoff = early.pop(state.url, None)
            if handoff is not None and handoff.state == state:
                handoff.give(new)
            else:
                self._start(new, state)


def _slice_id(chain: ChainId) -> int | None:
    """What the logs call a chain: its slice's id, or none for the head."""
    return chain.id if isinstance(chain, Slice) else None


@dataclass
class Saved:
    """A chain's state as last committed."""

    state: plan.State


def first_error(exc: BaseException) -> BaseException:
    """The error to show from a task group's ExceptionGroup: a SyncError when there is one."""
    if isinstance(exc, BaseExceptionGroup):
        found = [first_error(e) for e in exc.exceptions]
        for e in found:
            if isinstance(e, errors.SyncError):
                return e
        return found[0]
    return exc
