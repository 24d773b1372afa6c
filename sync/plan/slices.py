"""Time slices: the ranges a scan's chains read, how a dense range splits, which records a
chain owns, and which chain asks first. Pure.

A query whose first page shows it holds more than a few pages hands the older part of its range
to new slices, queries of their own read at the same time, each with its own checkpoint. The v1
lists slice by `startDate`/`endDate`; the legacy sent part by whole days of DateSent. A slice
stops above its lower neighbour only while its pages are newest first; otherwise it reads its
query to the end, which costs requests, never records. Each chain saves only the records of its
own range (`Chain.owns`), so that pages overlapping at a boundary count each record once."""

from __future__ import annotations

import dataclasses
import math

# Slicing. A query whose first page shows more than SLICE_PAGES pages below it keeps about that
# many and hands the rest to at most MAX_SPLIT new slices, each of about SLICE_PAGES pages; each
# of those splits again when its own first page shows it denser than that. Fewer pages per slice
# means more requests in flight but more partly filled pages, one at each slice's end.
SLICE_PAGES = 4
MAX_SPLIT = 16
DAY = 86_400.0
UNKNOWN_LENGTH = -1e9  # the priority of a chain whose end no page has shown: as if the longest


@dataclasses.dataclass(frozen=True)
class Chain:
    """A query over a range of one key (v1: createdAt; the legacy sent part: date_sent), in
    epoch seconds, and what its pages showed of that key's order. Saved as JSON with its chain's
    checkpoint (`dataclasses.asdict`): its field names are a stored format."""

    lo: float  # the range the query asks for: [lo, hi)
    hi: float | None  # None: no upper bound (the legacy DateSent>= query)
    by_sent: bool = False  # the key is date_sent (a legacy slice), not the creation time
    floor: float | None = None  # slices below read [lo, floor): stop once past it, newest first
    desc: bool = True  # the key never grew down the pages read so far
    last: float | None = None  # the key of the last record read
    pages: int = 0
    span: float | None = None  # the key range one page covered, as its first page showed

    @property
    def pages_left(self) -> float | None:
        """About how many pages are left to read, once the first page showed the density."""
        if self.span is None or self.last is None or not self.desc:
            return None
        return max(0.0, (self.last - (self.lo if self.floor is None else self.floor)) / self.span)

    @property
    def grain(self) -> float:
        """What its range is cut on: a whole second, or a whole day for DateSent."""
        return DAY if self.by_sent else 1.0

    @property
    def priority(self) -> float:
        """A first page first (it may split the chain), then the most pages left first."""
        if self.pages == 0:
            return -math.inf
        left = self.pages_left
        return UNKNOWN_LENGTH if left is None else -left

    @property
    def past_floor(self) -> bool:
        """Newest first so far, and below the range the slices under it read."""
        return self.floor is not None and self.desc and self.last is not None and self.last < self.floor

    def owns(self, created: float | None, sent: float | None) -> bool:
        """Whether a record is in this chain's own range (one without the key: yes)."""
        key = sent if self.by_sent else created
        low = self.lo if self.floor is None else self.floor
        return key is None or (low <= key and (self.hi is None or key < self.hi))

    def read(self, times: list[tuple[float | None, float | None]]) -> Chain:
        """The chain after a page of records with these (date_created, date_sent), in list order."""
        keys = [k for k in (t[1] if self.by_sent else t[0] for t in times) if k is not None]
        desc, last = self.desc, self.last
        for key in keys:
            if last is not None and key > last:
                desc = False
            last = key
        after = dataclasses.replace(self, desc=desc, last=last, pages=self.pages + 1)
        if self.pages == 0 and desc and len(keys) > 1:
            # The key range one page covers here: the density the rest is estimated by.
            after = dataclasses.replace(after, span=max(keys[0] - keys[-1], 1.0) * len(keys) / (len(keys) - 1))
        return after


def split(c: Chain) -> tuple[Chain, list[tuple[float, float]]]:
    """Keep about SLICE_PAGES pages of the range below the first page; the ranges [lo, hi) of
    the rest, cut on the chain's grain, for new slices of about as many pages each."""
    assert c.last is not None and c.span is not None
    span, grain = c.span, c.grain
    if (c.last - c.lo) / span <= SLICE_PAGES:
        return c, []
    # The cut on a whole grain near where this chain's SLICE_PAGES end, never below that (a
    # day's grain would leave this chain up to a day more) nor above what it has read.
    cut = min(ceil(c.last - (SLICE_PAGES - 1) * span, grain), floor(c.last, grain))
    if cut - c.lo < grain:
        return c, []
    parts = min(MAX_SPLIT, math.ceil((cut - c.lo) / span / SLICE_PAGES))
    bounds = sorted({c.lo, cut, *(floor(c.lo + (cut - c.lo) * i / parts, grain) for i in range(1, parts))})
    bounds = [b for b in bounds if b >= c.lo]  # a v1 window need not start on a whole second
    return dataclasses.replace(c, floor=cut), list(zip(bounds, bounds[1:]))


def floor(t: float, grain: float) -> float:
    return math.floor(t / grain) * grain


def ceil(t: float, grain: float) -> float:
    return math.ceil(t / grain) * grain
