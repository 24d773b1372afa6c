"""The scan plan: which list request comes next, decided from the pages already read. Pure.

A scan is a small state machine, or rather a few running at once: its head, which starts at
the list's first URL, and the time slices the pages split off. Each parsed page moves its chain
to its next `State` (the next URL of the same query, the list's top again, or done) and may
spawn slices. A state is plain data (`State.to_json`), saved as its chain's checkpoint in the
page's own transaction, with the slices the page spawned, so a scan killed at any instant
resumes exactly where each of its chains was.

The v1 lists are filtered by creation time on the server: the plan follows `pagination.next`
to the end. The legacy list cannot be filtered by creation time, and it keeps up to 400 days,
so reading it to its end costs in proportion to the account's whole history. Twilio documents
it as sorted by DateSent, newest first; where a null `date_sent` (a message never sent:
queued, scheduled, failed, canceled) sorts, and how those sort among themselves, it does not
say. The plan therefore reads the list from the top and keeps, as evidence, which of these
orders what it has read so far is consistent with:

  (a) ``created``       date_created descending, nulls anywhere;
  (b) ``sent-created``  date_sent descending, the null block first, ordered by date_created descending;
  (c) ``sent-nulls``    date_sent descending, the null block first, in any order inside;

and it stops only when every order still consistent with the evidence says that nothing of the
window can follow. Under (a) that is the first record created before the window. Under (b) and
(c) the sent part is not the head's to read: once the list shows its null block first, the sent
part of the window goes to a slice through ``DateSent>=`` (the day the window's first message
could be sent: `SENT_MARGIN` and any skew seen before its start), which never matches a null
date_sent, and the head reads only the block: to its end under (c), and under (b) down to a
null record created before the window, the rest of the block being older still.
When no order fits (nulls last, no order at all) the list is read to its end and the scan says
so. A wrong guess would lose messages silently; reading more only costs requests.

Time slices. A scan need not read one page at a time: a query whose first page shows it holds
more than a few pages hands the older part of its range to new slices, queries of their own read
at the same time, each with its own checkpoint (`State` with a `Chain`). The v1 lists slice by
`startDate`/`endDate`; the legacy sent part by whole days of DateSent. A slice stops above its
lower neighbour only while its pages are newest first; otherwise it reads its query to the end,
which costs requests, never records. Each chain saves only the records of its own range
(`State.owns`), so that pages overlapping at a boundary count each record once.

A record's place in the list is what `Page.times` carries: its (date_created, date_sent) as
epoch seconds, None where absent or unparseable, in the order served."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from sync import errors, pagination
from sync.models import Page, Window
from sync.sources import Source

# A message is sent after it is created; this much earlier still is tolerated (clock skew
# between Twilio's systems, second rounding), plus the largest skew the scan has seen.
SENT_MARGIN = timedelta(hours=1)

# The orders the evidence can name, most specific first (see the module docstring).
CREATED, SENT_CREATED, SENT_NULLS, UNORDERED = "created", "sent-created", "sent-nulls", "unordered"
ORDERS = (CREATED, SENT_CREATED, SENT_NULLS, UNORDERED)

# Twilio sometimes answers 500 for large pages: after this many in a row for one page, the
# plan asks for half as many records, down to MIN_PAGE_SIZE.
SHRINK_AFTER = 2
MIN_PAGE_SIZE = 25

# Phases of a chain of pages.
LIST = "list"  # the unfiltered list from the top, until the evidence says the window is read
# Written by an earlier release only (its checkpoints still resume): the sent part of the legacy
# list through DateSent>=, read one page at a time. Slices read that part now.
SENT = "sent"
ALL = "all"  # the unfiltered list to its very end: the evidence fits no order we can stop early in
SLICE = "slice"  # a time slice: one query over part of the range, read with others at once

# Slicing. A query whose first page shows more than SLICE_PAGES pages below it keeps about that
# many and hands the rest to at most MAX_SPLIT new slices, each of about SLICE_PAGES pages; each
# of those splits again when its own first page shows it denser than that. Fewer pages per slice
# means more requests in flight but more partly filled pages, one at each slice's end.
SLICE_PAGES = 4
MAX_SPLIT = 16
DAY = 86_400.0
UNKNOWN_LENGTH = -1e9  # the priority of a chain whose end no page has shown: as if the longest


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What the legacy pages read so far say about the list's order. Each flag starts true and
    turns false, for good, at the first record that contradicts it."""

    created_desc: bool = True  # (a): date_created never grew down the unfiltered list
    nulls_first: bool = True  # (b), (c): no null date_sent after a sent record
    null_block_desc: bool = True  # (b): date_created never grew inside the null block
    sent_desc: bool = True  # (b), (c): date_sent never grew among sent records
    # Positions, in epoch seconds: where the reader is in each ordering.
    in_sent: bool = False  # a sent record has been read in the current phase
    null_seen: bool = False  # a never-sent record has been read in the current phase
    # A sent record came after a never-sent one: the never-sent are not all last.
    sent_after_null: bool = False
    last_created: float | None = None
    last_null_created: float | None = None
    last_sent: float | None = None
    skew: float = 0.0  # the most a record's date_sent came before its date_created
    warned: bool = False  # the scan has said once that it cannot stop early
    # Where the sent part read by slices begins (epoch seconds of date_sent), once this chain has
    # handed it to them; None before.
    sliced_from: float | None = None

    def positions_reset(self) -> Evidence:
        """Reading a query again from its top: what was learned of the order stays."""
        return dataclasses.replace(self, in_sent=False, null_seen=False, last_created=None, last_null_created=None,
                                   last_sent=None)

    @property
    def order(self) -> str:
        """The most specific order the evidence still allows."""
        if self.created_desc:
            return CREATED
        if self.nulls_first and self.sent_desc:
            return SENT_CREATED if self.null_block_desc else SENT_NULLS
        return UNORDERED


@dataclasses.dataclass(frozen=True)
class Chain:
    """A query over a range of one key (v1: createdAt; the legacy sent part: date_sent), in
    epoch seconds, and what its pages showed of that key's order."""

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


@dataclasses.dataclass(frozen=True)
class State:
    """Where a chain of pages is: the next request (None: done) and what it learned. A scan is
    its head chain (the list from its top) and the slices it spawned."""

    url: str | None
    phase: str = LIST
    evidence: Evidence = Evidence()
    chain: Chain | None = None  # the v1 head and every slice: the range it reads

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"phase": self.phase, "evidence": dataclasses.asdict(self.evidence)}
        if self.chain is not None:
            data["chain"] = dataclasses.asdict(self.chain)
        return data

    @classmethod
    def from_json(cls, url: str | None, data: dict[str, Any] | None) -> State:
        if not data:
            return cls(url)  # a checkpoint written before plans existed: a plain position
        chain = Chain(**data["chain"]) if data.get("chain") else None
        return cls(url, data.get("phase", LIST), Evidence(**data.get("evidence", {})), chain)

    @property
    def done(self) -> bool:
        return self.url is None

    @property
    def priority(self) -> float:
        """When the account's budget admits this chain's next request, lowest first. A first page
        first: it may split the chain and put more requests in flight. Then the chains with the
        most pages left (a head, the list from its top, has no known end), which decide when the
        scan ends: the longest first keeps the others' requests filling the rest of the budget."""
        c = self.chain
        if c is None:  # the legacy head
            return -math.inf if self.evidence == Evidence() else UNKNOWN_LENGTH
        if c.pages == 0:
            return -math.inf
        left = c.pages_left
        return UNKNOWN_LENGTH if left is None else -left

    def owns(self, created: float | None, sent: float | None) -> bool:
        """Whether a record this chain was served is its own to save, not one that a slice reads
        exactly (by its own query's filter, whatever the list's order): a chain's pages may
        overlap its neighbours', and each record counts once."""
        c = self.chain
        if c is not None:
            key = sent if c.by_sent else created
            low = c.lo if c.floor is None else c.floor
            return key is None or (low <= key and (c.hi is None or key < c.hi))
        split = self.evidence.sliced_from
        return split is None or sent is None or sent < split

    @property
    def order(self) -> str:
        """The legacy list's order as the scan found it (one of ORDERS)."""
        if self.phase == SENT:
            return SENT_CREATED  # only that order let a scan leave the unfiltered list early
        if self.phase == ALL:
            return UNORDERED
        ev = self.evidence
        if ev.sliced_from is not None and ev.nulls_first and ev.sent_desc:
            # The order the scan acted on: the sent part read by DateSent, the block by this chain.
            return SENT_CREATED if ev.null_block_desc else SENT_NULLS
        return ev.order


@dataclasses.dataclass(frozen=True)
class Step:
    """The state after a page, the slices it hands part of its range to (saved with the page,
    so that no range is ever both given away and lost), and what to tell the operator."""

    state: State
    warning: str | None = None
    spawn: tuple[State, ...] = ()


class Plan:
    """How one scan pages through one list: its first state, and the step after each page of
    any of its chains (one Plan serves all of a scan's chains at once)."""

    def __init__(self, source: Source, account_sid: str, window: Window, page_size: int, base_url: str) -> None:
        self.source = source
        self.account_sid = account_sid
        self.window = window
        self.page_size = page_size
        self.base_url = base_url
        self._start = window.start.timestamp()
        # Positions handed out in this process, per phase and query: a repeat is a loop.
        self._tokens: set[tuple[str, str, str]] = set()

    def first(self) -> State:
        return first_state(self.source, self.account_sid, self.window, self.page_size)

    def restart(self, state: State) -> State:
        """The same chain from its first page (its page token went stale); rows stay archived,
        and so does what was learned of the order (a slice keeps its floor)."""
        self._tokens.clear()
        if state.chain is not None:
            chain = dataclasses.replace(state.chain, last=None)
            return State(self._chain_url(chain), state.phase, state.evidence, chain)
        url = self._sent_url(state.evidence) if state.phase == SENT else self.first().url
        return State(url, state.phase, state.evidence.positions_reset())

    def advance(self, state: State, fetched: str, page: Page) -> Step:
        """The state after `page`, fetched from `fetched` (the URL really asked, page size included)."""
        link = page.next_url
        if link is not None:
            # Refuse a foreign link before it becomes a checkpoint we could never leave.
            pagination.resolve(self.base_url, link)
        if state.chain is not None:
            step = self._chain(state, link, page)
        elif self.source.sent_column is None:  # a v1 checkpoint of an earlier release: follow it
            step = Step(State(link))
        else:
            step = self._legacy(state, link, page)
        if step.state.url is not None and step.state.url == link:
            self._check_loop(step.state.phase, link)
        return step

    # ---- slices -------------------------------------------------------------------------------

    def _chain(self, state: State, link: str | None, page: Page) -> Step:
        """Follow the query to its end, or to its floor while newest first; after its first
        page, hand the older part of a dense range to new slices."""
        c = state.chain
        assert c is not None
        sent = c.by_sent
        keys = [t[1] if sent else t[0] for t in page.times]
        keys = [k for k in keys if k is not None]
        desc, last = c.desc, c.last
        for key in keys:
            if last is not None and key > last:
                desc = False
            last = key
        after = dataclasses.replace(c, desc=desc, last=last, pages=c.pages + 1)
        if c.pages == 0 and desc and len(keys) > 1:
            # The key range one page covers here: the density the rest is estimated by.
            after = dataclasses.replace(after, span=max(keys[0] - keys[-1], 1.0) * len(keys) / (len(keys) - 1))
        if link is None or (after.floor is not None and desc and last is not None and last < after.floor):
            return Step(State(None, state.phase, state.evidence, after))
        spawn: tuple[State, ...] = ()
        if after.span is not None and c.pages == 0:
            after, spawn = self._split(after, DAY if sent else 1.0)
        return Step(State(link, state.phase, state.evidence, after), spawn=spawn)

    def _split(self, c: Chain, grain: float) -> tuple[Chain, tuple[State, ...]]:
        """Keep about SLICE_PAGES pages of the range below the first page; give the rest, cut
        on `grain` (a whole second; a whole day for DateSent), to new slices of about as many."""
        assert c.last is not None and c.span is not None
        span = c.span
        if (c.last - c.lo) / span <= SLICE_PAGES:
            return c, ()
        # The cut on a whole grain near where this chain's SLICE_PAGES end, never below that (a
        # day's grain would leave this chain up to a day more) nor above what it has read.
        cut = min(_ceil(c.last - (SLICE_PAGES - 1) * span, grain), _floor(c.last, grain))
        if cut - c.lo < grain:
            return c, ()
        parts = min(MAX_SPLIT, math.ceil((cut - c.lo) / span / SLICE_PAGES))
        bounds = sorted({c.lo, cut, *(_floor(c.lo + (cut - c.lo) * i / parts, grain) for i in range(1, parts))})
        bounds = [b for b in bounds if b >= c.lo]  # a v1 window need not start on a whole second
        slices = tuple(self._slice(lo, hi) for lo, hi in zip(bounds, bounds[1:]))
        return dataclasses.replace(c, floor=cut), slices

    def _slice(self, lo: float, hi: float | None) -> State:
        chain = Chain(lo=lo, hi=hi, by_sent=self.source.sent_column is not None)
        return State(self._chain_url(chain), SLICE, Evidence(), chain)

    def _chain_url(self, chain: Chain) -> str:
        if chain.by_sent:
            return _date_sent_url(self.account_sid, self.page_size, chain.lo, chain.hi)
        assert chain.hi is not None
        window = Window(_utc(chain.lo), _utc(chain.hi))
        return self.source.first_url(self.account_sid, window, self.page_size)

    # ---- the legacy list --------------------------------------------------------------------

    def _legacy(self, state: State, link: str | None, page: Page) -> Step:
        ev = _read(state.evidence, page.times, filtered=state.phase == SENT)
        if state.phase == ALL:
            return Step(State(link, ALL, ev))
        if state.phase == SENT:
            if not (ev.nulls_first and ev.sent_desc):
                # The filtered list breaks the order that sent us here: the null block we left
                # may not be ordered either. Only the whole list is safe now.
                return self._unordered(ev, "the DateSent-filtered list is not in date_sent order", from_top=True)
            return Step(State(None if self._sent_past(ev) else link, SENT, ev))
        # The unfiltered list.
        a = ev.created_desc
        bc = ev.nulls_first and ev.sent_desc
        spawn: tuple[State, ...] = ()
        if bc and ev.sliced_from is None and link is not None and not (a and ev.in_sent):
            # The list starts with its null block: its sent part is read through DateSent from
            # the day the window's first message could be sent, in slices, while this chain
            # reads the block. Not while a page of sent messages still fits creation order too:
            # then the list's top alone may hold the window, never-sent messages included.
            lo = _floor(self._sent_floor(ev), DAY)
            spawn = (self._slice(lo, None),)
            ev = dataclasses.replace(ev, sliced_from=lo)
        return dataclasses.replace(self._unfiltered(ev, link, a, bc), spawn=spawn)

    def _unfiltered(self, ev: Evidence, link: str | None, a: bool, bc: bool) -> Step:
        if not a and not bc:
            return self._unordered(ev, "the list fits no order with its null date_sent block in one place", link=link)
        a_done = a and ev.last_created is not None and ev.last_created < self._start
        # Under (b) and (c) the slices read the sent part: this chain is done once past the block.
        bc_done = bc and (self._sent_past(ev) or (ev.sliced_from is not None and ev.in_sent and ev.sent_after_null))
        if (a_done or not a) and (bc_done or not bc):
            if ev.in_sent and not ev.sent_after_null and ev.sent_desc:
                # No sent message has yet followed a never-sent one, in date_sent order so far:
                # the never-sent may all come last, where only reading to the end finds them.
                return self._unordered(ev, "no never-sent message came before a sent one: they may all come last",
                                       link=link)
            return Step(State(None, LIST, ev))
        if bc and not ev.in_sent and ev.null_block_desc \
                and ev.last_null_created is not None and ev.last_null_created < self._start:
            # (b): the rest of the null block is older than the window, and the slices read the
            # sent part (or the list has ended).
            return Step(State(None if ev.sliced_from is not None else link, LIST, ev))
        warning = None
        if bc and not a and not ev.in_sent and not ev.null_block_desc and not ev.warned and link is not None:
            warning = ("the null date_sent block is not ordered by date_created: reading it whole "
                       "(the messages never sent, of the list's whole history)")
            ev = dataclasses.replace(ev, warned=True)
        return Step(State(link, LIST, ev), warning)

    def _unordered(self, ev: Evidence, why: str, *, link: str | None = None, from_top: bool = False) -> Step:
        """Read the unfiltered list to its end: on from `link`, or again from the top when
        the scan has skipped part of it on evidence that no longer holds."""
        warning = None if ev.warned else f"{why}: reading the whole list, at a cost that grows with the account's history"
        ev = dataclasses.replace(ev, warned=True)
        if from_top:
            return Step(State(self.first().url, ALL, ev.positions_reset()), warning)
        return Step(State(link, ALL, ev), warning)

    def _sent_past(self, ev: Evidence) -> bool:
        """Sent records are in date_sent order and the reader is past the window's earliest send."""
        return ev.in_sent and ev.last_sent is not None and ev.last_sent < self._sent_floor(ev)

    def _sent_floor(self, ev: Evidence) -> float:
        return self._start - SENT_MARGIN.total_seconds() - ev.skew

    def _sent_url(self, ev: Evidence) -> str:
        return _date_sent_url(self.account_sid, self.page_size, _floor(self._sent_floor(ev), DAY), None)

    def _check_loop(self, phase: str, link: str) -> None:
        """The token names a position in its query: a legacy next_page_uri also carries `Page`,
        which grows even when the token repeats, so whole URLs would hide a loop; and the same
        token may well come back in another query (a slice, the list read again from its top)."""
        token = pagination.page_token(link)
        position = (phase, pagination.query_of(link), token or link)
        if position in self._tokens:
            raise errors.PaginationLoopError(f"the API handed out the same page token twice ({token or link}): a loop, not progress")
        self._tokens.add(position)


def first_state(source: Source, account_sid: str, window: Window, page_size: int) -> State:
    """Where a new scan starts: the list's top (v1: one query over the whole window, sliced
    once its first page shows how dense it is)."""
    url = source.first_url(account_sid, window, page_size)
    if source.sent_column is not None:
        return State(url)
    return State(url, LIST, Evidence(), Chain(lo=window.start.timestamp(), hi=window.end.timestamp()))


def _floor(t: float, grain: float) -> float:
    return math.floor(t / grain) * grain


def _ceil(t: float, grain: float) -> float:
    return math.ceil(t / grain) * grain


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc)


def _date_sent_url(account_sid: str, page_size: int, lo: float, hi: float | None) -> str:
    """The legacy list sent on the days [lo, hi) (whole UTC days; hi None: from lo on). The
    DateSent filters take GMT days, the `<` and `>` forms inclusive ("on or before/after")."""
    first = _utc(lo).date()
    if hi is None:
        filters = [("DateSent>", first.isoformat())]
    else:
        last = _utc(hi - DAY).date()
        filters = [("DateSent", first.isoformat())] if last == first else \
            [("DateSent<", last.isoformat()), ("DateSent>", first.isoformat())]
    query = urlencode([*filters, ("PageSize", str(page_size))])
    return f"/2010-04-01/Accounts/{account_sid}/Messages.json?{query}"


def retry_url(url: str, failed_500: int) -> str:
    """The request to retry after `failed_500` answers 500 in a row: the same one, or after
    SHRINK_AFTER of them a smaller page. Both APIs' tokens name a position, not an offset, so
    the token stays valid at any size."""
    size = pagination.page_size(url)
    if failed_500 >= SHRINK_AFTER and size is not None and size > MIN_PAGE_SIZE:
        return pagination.with_page_size(url, max(MIN_PAGE_SIZE, size // 2))
    return url


def _read(ev: Evidence, times: list[tuple[float | None, float | None]], *, filtered: bool) -> Evidence:
    """The evidence after reading records with these (date_created, date_sent), in list order."""
    created_desc, nulls_first, null_desc, sent_desc = ev.created_desc, ev.nulls_first, ev.null_block_desc, ev.sent_desc
    in_sent, last_c, last_nc, last_s, skew = ev.in_sent, ev.last_created, ev.last_null_created, ev.last_sent, ev.skew
    null_seen, sent_after_null = ev.null_seen, ev.sent_after_null
    for created, sent in times:
        if not filtered and sent is not None and last_c is None and last_nc is None and not in_sent:
            # The list starts with a sent message: either nothing is null, or the nulls are
            # elsewhere (last, say). Only a null at the very top shows the block comes first.
            nulls_first = False
        if sent is None:
            null_seen = True
            if filtered or in_sent:
                nulls_first = False  # a null after a sent record, or one a DateSent filter let through
            elif created is not None:
                if last_nc is not None and created > last_nc:
                    null_desc = False
                last_nc = created
        else:
            in_sent = True
            sent_after_null = sent_after_null or (null_seen and not filtered)
            if last_s is not None and sent > last_s:
                sent_desc = False
            last_s = sent
            if created is not None:
                skew = max(skew, created - sent)
        if created is not None and not filtered:
            if last_c is not None and created > last_c:
                created_desc = False
            last_c = created
    return dataclasses.replace(ev, created_desc=created_desc, nulls_first=nulls_first, null_block_desc=null_desc,
                               sent_desc=sent_desc, in_sent=in_sent, null_seen=null_seen,
                               sent_after_null=sent_after_null, last_created=last_c, last_null_created=last_nc,
                               last_sent=last_s, skew=skew)
