"""The legacy list's head: the unfiltered list from its top, until its order says the window is
read. Pure: the evidence of a page (sync/plan/order.py) in, the chain's next `Step` out.

One legacy scan, page by page:

1. The head reads the list from its top (`Phase.LIST`) and folds each page into its evidence.
2. Once the list shows its null date_sent block first (orders (b), (c)), the sent part of the
   window goes to one slice through ``DateSent>=`` (from the day the window's first message could
   be sent), which never matches a null date_sent, and splits like any slice
   (sync/plan/slices.py); the head reads only the block.
3. After each page `order.decide` says: read on, done, or read the whole list (`Phase.ALL`),
   said once, when the evidence fits no order the scan could stop early in."""

from __future__ import annotations

import dataclasses

from sync.models import Page
from sync.plan import order
from sync.plan.order import Decision, Evidence
from sync.plan.scope import Scope
from sync.plan.state import Phase, State, Step

WHOLE_LIST = "reading the whole list, at a cost that grows with the account's history"
WHY = {
    Decision.NO_ORDER: "the list fits no order with its null date_sent block in one place",
    Decision.NULLS_MAY_BE_LAST: "no never-sent message came before a sent one: they may all come last",
}
BLOCK_UNORDERED = ("the null date_sent block is not ordered by date_created: reading it whole "
                   "(the messages never sent, of the list's whole history)")


def step(scope: Scope, state: State, link: str | None, page: Page) -> Step:
    """The head's step after `page`, whose link to the next page is `link`."""
    ev = order.read(state.evidence, page.times, filtered=state.phase == Phase.SENT)
    if state.phase == Phase.ALL:
        return Step(State(link, Phase.ALL, ev))
    if state.phase == Phase.SENT:
        return _sent(scope, ev, link)
    spawn: tuple[State, ...] = ()
    if ev.by_sent and ev.sliced_from is None and link is not None and not (ev.by_created and ev.in_sent):
        # The list starts with its null block: its sent part is read through DateSent from the
        # day the window's first message could be sent, in slices, while this chain reads the
        # block. Not while a page of sent messages still fits creation order too: then the
        # list's top alone may hold the window, never-sent messages included.
        lo = scope.sent_from(order.sent_floor(ev, scope.start))
        spawn = (scope.slice(lo, None),)
        ev = dataclasses.replace(ev, sliced_from=lo)
    return dataclasses.replace(_unfiltered(scope, ev, link), spawn=spawn)


def _unfiltered(scope: Scope, ev: Evidence, link: str | None) -> Step:
    decision = order.decide(ev, scope.start)
    if decision in WHY:
        return _unordered(scope, ev, WHY[decision], link=link)
    if decision is Decision.DONE:
        return Step(State(None, Phase.LIST, ev))
    if decision is Decision.BLOCK_PASSED:
        # The rest of the null block is older than the window, and the slices read the sent
        # part (or the list has ended).
        return Step(State(None if ev.sliced_from is not None else link, Phase.LIST, ev))
    if decision is Decision.READ_BLOCK and not ev.warned and link is not None:
        return Step(State(link, Phase.LIST, dataclasses.replace(ev, warned=True)), BLOCK_UNORDERED)
    return Step(State(link, Phase.LIST, ev))


def _sent(scope: Scope, ev: Evidence, link: str | None) -> Step:
    """A checkpoint of an earlier release, reading the sent part through DateSent>= itself."""
    if not ev.by_sent:
        # The filtered list breaks the order that sent us here: the null block we left may not
        # be ordered either. Only the whole list is safe now.
        return _unordered(scope, ev, "the DateSent-filtered list is not in date_sent order", from_top=True)
    return Step(State(None if order.sent_past(ev, scope.start) else link, Phase.SENT, ev))


def _unordered(scope: Scope, ev: Evidence, why: str, *, link: str | None = None, from_top: bool = False) -> Step:
    """Read the unfiltered list to its end: on from `link`, or again from the top when the scan
    has skipped part of it on evidence that no longer holds."""
    warning = None if ev.warned else f"{why}: {WHOLE_LIST}"
    ev = dataclasses.replace(ev, warned=True)
    if from_top:
        return Step(State(scope.first().url, Phase.ALL, ev.positions_reset()), warning)
    return Step(State(link, Phase.ALL, ev), warning)


def sent_url(scope: Scope, ev: Evidence) -> str:
    """The `Phase.SENT` query from its top: the list sent from the window's earliest send on."""
    return scope.source.range_url(scope.account_sid, scope.sent_from(order.sent_floor(ev, scope.start)), None,
                                  scope.page_size)
