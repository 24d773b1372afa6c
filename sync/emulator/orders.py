"""The orders the emulated legacy Messages list can be served in. Pure, no I/O.

Twilio documents the legacy list as sorted by DateSent, newest first. Where a null
`date_sent` goes (never-sent messages: queued, scheduled, failed, canceled, accepted...)
and how that block is ordered inside itself is undocumented, so the emulator can play each
plausible answer, and one with no order at all. A scan must be exact under every one.

An order is a sort-key function `(sent_ms | None, created_ms, sid) -> (int, str)`; the list
is the keys ascending. Sent records of the date_sent orders have int part `-sent_ms`, and a
null block sits wholly below (first) or above (last) every sent key, so a DateSent range is
an index range there (`sent_bounds`); the other orders filter row by row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import NamedTuple

Key = tuple[int, str]
KeyFunction = Callable[[int | None, int, str], Key]

# Every parseable date_sent is within +-2**48 ms of 1970, far inside +-SENT_BOUND; the null
# blocks lie beyond it on either side (offset by date_created, itself within +-2**48).
SENT_BOUND = 2**60
NULLS_FIRST = -(2**62)
NULLS_LAST = 2**62


def _created(sent: int | None, created: int, sid: str) -> Key:
    return (-created, sid)


def _sent_created(sent: int | None, created: int, sid: str) -> Key:
    return (NULLS_FIRST - created if sent is None else -sent, sid)


def _sent_sid(sent: int | None, created: int, sid: str) -> Key:
    return (NULLS_FIRST if sent is None else -sent, sid)


def _sent_nulls_last(sent: int | None, created: int, sid: str) -> Key:
    return (NULLS_LAST - created if sent is None else -sent, sid)


def _shuffled(sent: int | None, created: int, sid: str) -> Key:
    # A keyed digest, not hash(): str hashes change from one process to the next.
    return (int.from_bytes(hashlib.blake2b(sid.encode(), digest_size=8).digest(), "big"), sid)


class LegacyOrder(NamedTuple):
    """One way of ordering the legacy list."""

    name: str
    key: KeyFunction
    by_sent: bool  # sent records are keyed -date_sent, nulls outside: DateSent is an index range
    help: str  # one line, for --help


_ORDERS = [
    LegacyOrder("created", _created, False,
                "date_created newest first, null date_sent interleaved (ties by sid)"),
    LegacyOrder("sent-created", _sent_created, True,
                "date_sent newest first, the null block first, newest date_created first inside"),
    LegacyOrder("sent-sid", _sent_sid, True,
                "date_sent newest first, the null block first, by sid inside (the default)"),
    LegacyOrder("sent-nulls-last", _sent_nulls_last, True,
                "date_sent newest first, the null block last, newest date_created first inside"),
    LegacyOrder("shuffled", _shuffled, False,
                "no order: a fixed pseudo-random order (a hash of the sid), stable between requests"),
]  # fmt: skip
ORDERS: dict[str, LegacyOrder] = {o.name: o for o in _ORDERS}
LEGACY_ORDERS: tuple[str, ...] = tuple(ORDERS)
DEFAULT_LEGACY_ORDER = "sent-sid"


def legacy_order(name: str) -> LegacyOrder:
    """The order called `name`; a ValueError naming the choices otherwise."""
    try:
        return ORDERS[name]
    except KeyError:
        raise ValueError(f"unknown legacy order {name!r}; choose one of {', '.join(LEGACY_ORDERS)}") from None


def sent_bounds(first: int | None, last: int | None) -> tuple[int, int]:
    """The key int range [lo, hi] of the sent records whose date_sent lies in [first, last]
    (epoch ms, inclusive, None = unbounded), in an order that is `by_sent`: never a null."""
    return (-SENT_BOUND if last is None else -last, SENT_BOUND if first is None else -first)
