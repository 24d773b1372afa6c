"""What every state of one scan's plan shares: its list, account, window and page size, and the
requests built from them (through the list's `Source`: `first_url`, `range_url`). Pure."""

from __future__ import annotations

import dataclasses

from sync.models import Window
from sync.plan.order import Evidence
from sync.plan.slices import DAY, Chain, floor
from sync.plan.state import Phase, State
from sync.sources import Source


@dataclasses.dataclass(frozen=True)
class Scope:
    source: Source
    account_sid: str
    window: Window
    page_size: int

    @property
    def start(self) -> float:
        """The window's start, in epoch seconds."""
        return self.window.start.timestamp()

    @property
    def legacy(self) -> bool:
        """The list cannot be filtered by creation time: its order is read from its pages."""
        return self.source.sent_column is not None

    def first(self) -> State:
        """Where a new scan starts: the list's top (v1: one query over the whole window, sliced
        once its first page shows how dense it is)."""
        url = self.source.first_url(self.account_sid, self.window, self.page_size)
        if self.legacy:
            return State(url)
        return State(url, Phase.LIST, Evidence(), Chain(lo=self.start, hi=self.window.end.timestamp()))

    def range_url(self, chain: Chain) -> str:
        """The first page of the query over the chain's range."""
        return self.source.range_url(self.account_sid, chain.lo, chain.hi, self.page_size)

    def slice(self, lo: float, hi: float | None) -> State:
        """A new time slice over [lo, hi), from its first page."""
        chain = Chain(lo=lo, hi=hi, by_sent=self.legacy)
        return State(self.range_url(chain), Phase.SLICE, Evidence(), chain)

    def sent_from(self, sent_floor: float) -> float:
        """The first whole day of DateSent that the window's sent part can be on."""
        return floor(sent_floor, DAY)
