"""Where a chain of pages is: its `State` (the next request and what its pages showed), saved
as its checkpoint, and the `Step` a page moves it by. Pure data.

A state is saved as JSON (`State.to_json`) in twilio.scans.plan for a scan's head and in
twilio.scan_slices.plan for a slice, in the page's own transaction; a scan killed at any instant
resumes from it, also after an upgrade: the JSON's keys and values are a stored format, and a
state written by an earlier release (a plain position, the `sent` phase) still loads."""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

from sync.plan.order import Evidence, Order
from sync.plan.slices import UNKNOWN_LENGTH, Chain


class Phase(enum.StrEnum):
    """Which query a chain reads; the value is what its checkpoint keeps."""

    LIST = "list"  # the unfiltered list from the top, until the evidence says the window is read
    # Written by an earlier release only (its checkpoints still resume): the sent part of the
    # legacy list through DateSent>=, read one page at a time. Slices read that part now.
    SENT = "sent"
    ALL = "all"  # the unfiltered list to its very end: the evidence fits no order we can stop early in
    SLICE = "slice"  # a time slice: one query over part of the range, read with others at once


@dataclasses.dataclass(frozen=True)
class State:
    """Where a chain of pages is: the next request (None: done) and what it learned. A scan is
    its head chain (the list from its top) and the slices it spawned."""

    url: str | None
    phase: Phase = Phase.LIST
    evidence: Evidence = Evidence()
    chain: Chain | None = None  # the v1 head and every slice: the range it reads

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"phase": self.phase.value, "evidence": dataclasses.asdict(self.evidence)}
        if self.chain is not None:
            data["chain"] = dataclasses.asdict(self.chain)
        return data

    @classmethod
    def from_json(cls, url: str | None, data: dict[str, Any] | None) -> State:
        if not data:
            return cls(url)  # a checkpoint written before plans existed: a plain position
        chain = Chain(**data["chain"]) if data.get("chain") else None
        return cls(url, Phase(data.get("phase", Phase.LIST)), Evidence(**data.get("evidence", {})), chain)

    @property
    def done(self) -> bool:
        return self.url is None

    @property
    def priority(self) -> float:
        """When the account's budget admits this chain's next request, lowest first. A first page
        first: it may split the chain and put more requests in flight. Then the chains with the
        most pages left (a head, the list from its top, has no known end), which decide when the
        scan ends: the longest first keeps the others' requests filling the rest of the budget."""
        if self.chain is None:  # the legacy head
            return -math.inf if self.evidence == Evidence() else UNKNOWN_LENGTH
        return self.chain.priority

    def owns(self, created: float | None, sent: float | None) -> bool:
        """Whether a record this chain was served is its own to save, not one that a slice reads
        exactly (by its own query's filter, whatever the list's order): a chain's pages may
        overlap its neighbours', and each record counts once."""
        if self.chain is not None:
            return self.chain.owns(created, sent)
        split = self.evidence.sliced_from
        return split is None or sent is None or sent < split

    @property
    def order(self) -> Order:
        """The legacy list's order as the scan found it."""
        if self.phase == Phase.SENT:
            return Order.SENT_CREATED  # only that order let a scan leave the unfiltered list early
        if self.phase == Phase.ALL:
            return Order.UNORDERED
        ev = self.evidence
        if ev.sliced_from is not None and ev.by_sent:
            # The order the scan acted on: the sent part read by DateSent, the block by this chain.
            return Order.SENT_CREATED if ev.null_block_desc else Order.SENT_NULLS
        return ev.order


@dataclasses.dataclass(frozen=True)
class Step:
    """The state after a page, the slices it hands part of its range to (saved with the page,
    so that no range is ever both given away and lost), and what to tell the operator."""

    state: State
    warning: str | None = None
    spawn: tuple[State, ...] = ()
