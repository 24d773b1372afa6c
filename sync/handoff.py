"""A new slice's first page, asked for before the slice exists: while the page that split it
off is being saved (sync/chains.py, `Chains._early`), which creates the slice in its own
transaction. Plain data and one event; no I/O of its own, no decisions: the chains decide.

`Handoff` carries the slice from that save to the waiting task (or None: the save did not
create it, and the page asked early is dropped); `Prefetched` carries the page, or the error
asking for it raised, with its ticket among the pages in hand, to the slice's chain, which
saves (or raises) it as if it had asked for it itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from sync.models import Page, Slice

if TYPE_CHECKING:
    from sync import budget, plan


@dataclass
class Prefetched:
    """A chain's first page, asked for before the chain existed: its ticket, and the page
    (None: stopped) or the error asking for it raised."""

    ticket: budget.Ticket
    got: tuple[plan.Step, Page] | None
    error: Exception | None
    queued: float  # when it waited for its ticket, and was asked for (monotonic: the scan.page timeline)
    asked: float

    def take(self) -> tuple[plan.Step, Page] | None:
        """The page (or its error), handed over once, keeping no reference to it: `_early` and
        the slice's chain hold this for as long as that chain runs, and a page kept here would
        stay in memory long after its save (every slice running held its first page: issue 19)."""
        got, error, self.got, self.error = self.got, self.error, None, None
        if error is not None:
            raise error
        return got


class Handoff:
    """A slice split off by a page being saved, from `_early` to the chain once the save is
    done: `chain` is the slice created, or None when the save did not create it."""

    def __init__(self, state: plan.State) -> None:
        self.state = state
        self.chain: Slice | None = None
        self.ready = anyio.Event()

    def give(self, chain: Slice | None) -> None:
        if not self.ready.is_set():
            self.chain = chain
            self.ready.set()
