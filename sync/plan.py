"""The scan plan: which list request comes next, decided from the pages already read. Pure.

A scan is a small state machine. It starts at the list's first URL; each parsed page moves it
to its next `State`: the next URL of the same query, a switch to another query, or done. The
state is plain data (`State.to_json`), saved as the scan's checkpoint in the page's own
transaction, so a scan killed at any instant resumes exactly where the machine was.

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
(c) it is the first sent record sent before the window (a message is sent after it is created,
allowing `SENT_MARGIN` and any earlier skew seen); under (b) the rest of the null block is
older than a null record created before the window, so the plan leaves the unfiltered list
there and reads the sent part through ``DateSent>=``, which never matches a null date_sent.
When no order fits (nulls last, no order at all) the list is read to its end and the scan says
so. A wrong guess would lose messages silently; reading more only costs requests.

A record's place in the list is what `Page.times` carries: its (date_created, date_sent) as
epoch seconds, None where absent or unparseable, in the order served."""

from __future__ import annotations

import dataclasses
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

# Phases of a legacy scan.
LIST = "list"  # the unfiltered list from the top, until the evidence says the window is read
SENT = "sent"  # the sent part of the list, through DateSent>=, after the null block's window part
ALL = "all"  # the unfiltered list to its very end: the evidence fits no order we can stop early in


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
class State:
    """Where a scan is: the next request (None: done) and, for the legacy list, the evidence."""

    url: str | None
    phase: str = LIST
    evidence: Evidence = Evidence()

    def to_json(self) -> dict[str, Any]:
        return {"phase": self.phase, "evidence": dataclasses.asdict(self.evidence)}

    @classmethod
    def from_json(cls, url: str | None, data: dict[str, Any] | None) -> State:
        if not data:
            return cls(url)  # a checkpoint written before plans existed: a plain position
        return cls(url, data.get("phase", LIST), Evidence(**data.get("evidence", {})))

    @property
    def done(self) -> bool:
        return self.url is None

    @property
    def order(self) -> str:
        """The legacy list's order as the scan found it (one of ORDERS)."""
        if self.phase == SENT:
            return SENT_CREATED  # only that order lets a scan leave the unfiltered list early
        if self.phase == ALL:
            return UNORDERED
        return self.evidence.order


@dataclasses.dataclass(frozen=True)
class Step:
    """The state after a page, and what the scan should tell its operator about it."""

    state: State
    warning: str | None = None


class Plan:
    """How one scan pages through one list: its first state, and the step after each page."""

    def __init__(self, source: Source, account_sid: str, window: Window, page_size: int, base_url: str) -> None:
        self.source = source
        self.account_sid = account_sid
        self.window = window
        self.page_size = page_size
        self.base_url = base_url
        self._start = window.start.timestamp()
        self._tokens: set[str] = set()  # positions handed out in this process: a repeat is a loop

    def first(self) -> State:
        return State(self.source.first_url(self.account_sid, self.window, self.page_size))

    def restart(self, state: State) -> State:
        """The same phase from its first page (its page token went stale); rows stay archived."""
        self._tokens.clear()
        url = self._sent_url(state.evidence) if state.phase == SENT else self.first().url
        return State(url, state.phase, state.evidence.positions_reset())

    def advance(self, state: State, fetched: str, page: Page) -> Step:
        """The state after `page`, fetched from `fetched` (the URL really asked, page size included)."""
        link = page.next_url
        if link is not None:
            # Refuse a foreign link before it becomes a checkpoint we could never leave.
            pagination.resolve(self.base_url, link)
        if self.source.sent_column is None:  # v1: the server filters by creation time
            step = Step(State(link))
        else:
            step = self._legacy(state, link, page)
        if step.state.phase != state.phase:
            self._tokens.clear()  # another query: its tokens may well repeat the last one's
        if step.state.url is not None and step.state.url == link:
            self._check_loop(link)
        return step

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
        if not a and not bc:
            return self._unordered(ev, "the list fits no order with its null date_sent block in one place", link=link)
        a_done = a and ev.last_created is not None and ev.last_created < self._start
        bc_done = bc and self._sent_past(ev)
        if (a_done or not a) and (bc_done or not bc):
            if ev.in_sent and not ev.sent_after_null and ev.sent_desc:
                # No sent message has yet followed a never-sent one, in date_sent order so far:
                # the never-sent may all come last, where only reading to the end finds them.
                return self._unordered(ev, "no never-sent message came before a sent one: they may all come last",
                                       link=link)
            return Step(State(None, LIST, ev))
        if bc and not ev.in_sent and ev.null_block_desc \
                and ev.last_null_created is not None and ev.last_null_created < self._start:
            # (b): the rest of the null block is older than the window; the sent part is what
            # is left, and DateSent>= reaches it without reading the block's older end.
            return Step(State(self._sent_url(ev), SENT, ev.positions_reset()))
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
        day = datetime.fromtimestamp(self._sent_floor(ev), timezone.utc).date()
        query = urlencode([("DateSent>", day.isoformat()), ("PageSize", str(self.page_size))])
        return f"/2010-04-01/Accounts/{self.account_sid}/Messages.json?{query}"

    def _check_loop(self, link: str) -> None:
        """The token names a position: a legacy next_page_uri also carries `Page`, which grows
        even when the token repeats, so whole URLs would hide a loop."""
        position = pagination.page_token(link) or link
        if position in self._tokens:
            raise errors.PaginationLoopError(f"the API handed out the same page token twice ({position}): a loop, not progress")
        self._tokens.add(position)


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
