"""The legacy list's order, reduced from the records read: evidence in, a decision out. Pure.

Twilio documents the legacy list as sorted by DateSent, newest first; where a null `date_sent`
(a message never sent: queued, scheduled, failed, canceled) sorts, and how those sort among
themselves, it does not say. So the scan reads the list from its top and keeps, as `Evidence`,
which of these orders what it has read so far is consistent with:

  (a) ``created``       date_created descending, nulls anywhere;
  (b) ``sent-created``  date_sent descending, the null block first, ordered by date_created descending;
  (c) ``sent-nulls``    date_sent descending, the null block first, in any order inside;

`read` folds a page's records into the evidence; `decide` says what the evidence allows for the
unfiltered list (a `Decision`): read on, stop, or read the whole list. It stops only when every
order still consistent with the evidence says that nothing of the window can follow: under (a)
the first record created before the window; under (b) and (c) the head is done once past the
null block (the sent part goes to DateSent slices, sync/plan/legacy.py), or, under (b), at a
null record created before the window. A wrong guess would lose messages silently; reading
more only costs requests."""

from __future__ import annotations

import dataclasses
import enum
from datetime import timedelta

# A message is sent after it is created; this much earlier still is tolerated (clock skew
# between Twilio's systems, second rounding), plus the largest skew the scan has seen.
SENT_MARGIN = timedelta(hours=1)


class Order(enum.StrEnum):
    """The orders the evidence can name, most specific first; the value is what
    twilio.scans.list_order and the metrics keep."""

    CREATED = "created"
    SENT_CREATED = "sent-created"
    SENT_NULLS = "sent-nulls"
    UNORDERED = "unordered"


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What the legacy pages read so far say about the list's order. Each flag starts true and
    turns false, for good, at the first record that contradicts it. Saved as JSON with the
    chain's checkpoint (`dataclasses.asdict`): its field names are a stored format."""

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
    def by_created(self) -> bool:
        """(a) is still possible."""
        return self.created_desc

    @property
    def by_sent(self) -> bool:
        """(b) or (c) is still possible: the null block first, then date_sent descending."""
        return self.nulls_first and self.sent_desc

    @property
    def order(self) -> Order:
        """The most specific order the evidence still allows."""
        if self.created_desc:
            return Order.CREATED
        if self.by_sent:
            return Order.SENT_CREATED if self.null_block_desc else Order.SENT_NULLS
        return Order.UNORDERED


class Decision(enum.Enum):
    """What the unfiltered list's evidence allows after a page."""

    FOLLOW = "follow"  # read on: the next page of the same query
    DONE = "done"  # every order still possible says nothing of the window follows
    # (b): the rest of the null block is older than the window: done once the sent part is
    # sliced off, read on otherwise
    BLOCK_PASSED = "block-passed"
    READ_BLOCK = "read-block"  # (c): the null block is in no creation order: read it whole, and say so
    NO_ORDER = "no-order"  # no order with the null block in one place: read the whole list
    NULLS_MAY_BE_LAST = "nulls-may-be-last"  # the never-sent may all come last: read the whole list


def sent_floor(ev: Evidence, start: float) -> float:
    """The earliest date_sent a message of a window starting at `start` can have."""
    return start - SENT_MARGIN.total_seconds() - ev.skew


def sent_past(ev: Evidence, start: float) -> bool:
    """Sent records are in date_sent order and the reader is past the window's earliest send."""
    return ev.in_sent and ev.last_sent is not None and ev.last_sent < sent_floor(ev, start)


def decide(ev: Evidence, start: float) -> Decision:
    """What the unfiltered list's evidence allows, for a window starting at `start` (epoch seconds)."""
    if not ev.by_created and not ev.by_sent:
        return Decision.NO_ORDER
    # Under (a) the first record created before the window ends the window.
    created_done = not ev.by_created or (ev.last_created is not None and ev.last_created < start)
    # Under (b) and (c) the slices read the sent part: the head is done once past the block.
    block_left = ev.sliced_from is not None and ev.in_sent and ev.sent_after_null
    sent_done = not ev.by_sent or sent_past(ev, start) or block_left
    if created_done and sent_done:
        if ev.in_sent and not ev.sent_after_null and ev.sent_desc:
            # No sent message has yet followed a never-sent one, in date_sent order so far: the
            # never-sent may all come last, where only reading to the end finds them.
            return Decision.NULLS_MAY_BE_LAST
        return Decision.DONE
    in_block = ev.by_sent and not ev.in_sent
    if in_block and ev.null_block_desc and ev.last_null_created is not None and ev.last_null_created < start:
        return Decision.BLOCK_PASSED
    if in_block and not ev.by_created and not ev.null_block_desc:
        return Decision.READ_BLOCK
    return Decision.FOLLOW


def read(ev: Evidence, times: list[tuple[float | None, float | None]], *, filtered: bool) -> Evidence:
    """The evidence after reading records with these (date_created, date_sent), in list order;
    `filtered`: read through a DateSent filter, which says nothing of the null block or of
    creation order."""
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
