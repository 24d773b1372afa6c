"""The scan plan, pure: from each page's evidence, what to read next and when the window is read.

The legacy cases page a list held in memory here, in each order the documents leave possible,
through the plan alone; the same orders are served over HTTP by the emulator in
tests/integration/test_list_orders.py."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
import pytest

from sync import errors, pagination, plan, sources
from sync.plan import order as plan_order
from tests import fakes
from sync.models import Page, Window

LEGACY = sources.BY_STREAM["legacy_messages"]
COMMS = sources.BY_STREAM["comms_messages"]
ACCOUNT = "AC" + "a" * 32
BASE = "https://api.twilio.com"
NOW = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
DAY = 86_400.0
WINDOW = Window(NOW - timedelta(days=7), NOW)
START = WINDOW.start.timestamp()
P = 50


def make_list(seed: int, recent: int = 400, older: int = 1_500, days: int = 120) -> list[dict]:
    """Messages over `days` days, `recent` of them inside the last 7; about one in six never sent."""
    rng = random.Random(seed)
    now = NOW.timestamp()
    records = []
    for i in range(recent + older):
        age = rng.uniform(60, 7 * DAY - 60) if i < recent else rng.uniform(7 * DAY + 60, days * DAY)
        created = now - age
        sent = None if rng.random() < 1 / 6 else min(now - 1, created + rng.choice([1, 2, 5, 60, 3_600]))
        records.append({"sid": f"SM{i:032x}", "created": created, "sent": sent})
    return records


def ordered(records: list[dict], order: str) -> list[dict]:
    nulls = [r for r in records if r["sent"] is None]
    sent = sorted((r for r in records if r["sent"] is not None), key=lambda r: (-r["sent"], r["sid"]))
    if order == "created":
        return sorted(records, key=lambda r: (-r["created"], r["sid"]))
    if order == "sent-created":
        return sorted(nulls, key=lambda r: (-r["created"], r["sid"])) + sent
    if order == "sent-sid":
        return sorted(nulls, key=lambda r: r["sid"]) + sent
    if order == "sent-nulls-last":
        return sent + sorted(nulls, key=lambda r: -r["created"])
    if order == "shuffled":
        return sorted(records, key=lambda r: hash(r["sid"]) % 1_000_003)
    raise ValueError(order)


class MemoryList:
    """A list and its filters (legacy DateSent days, v1 startDate/endDate), paged by offset
    tokens; counts requests."""

    def __init__(self, records: list[dict]) -> None:
        self.records = records
        self.requests: list[str] = []

    def page(self, url: str) -> Page:
        self.requests.append(url)
        query = dict(parse_qsl(urlsplit(url).query))
        rows = fakes.filtered(self.records, query)
        size = int(query.get("PageSize") or query["pageSize"])
        token = query.get("PageToken") or query.get("pageToken") or "PA0"
        offset = int(token[2:])
        chunk = rows[offset:offset + size]
        more = offset + size < len(rows)
        keep = {k: v for k, v in query.items() if k not in ("PageToken", "Page", "pageToken")}
        nxt = None
        if more:
            name = "pageToken" if "pageSize" in query else "PageToken"
            nxt = urlsplit(url).path + "?" + urlencode({**keep, name: f"PA{offset + size}"})
        self.served = chunk
        outside = sum(1 for r in chunk if not START <= r["created"] < WINDOW.end.timestamp())
        return Page(records=[], next_url=nxt, seen=len(chunk), outside_window=outside,
                    rejected=[], times=[(r["created"], r["sent"]) for r in chunk])


def scan(records: list[dict], window: Window = WINDOW, source=LEGACY, seed: int = 0,
         ) -> tuple[set[str], MemoryList, list[str], plan.State]:
    """Run a plan over the list, its head from the top and every slice it spawns, interleaved
    in a random order as a scan's parallel chains may be, each to done; (sids served, the list,
    warnings, the head's last state)."""
    served_list = MemoryList(records)
    machine = plan.Plan(source, ACCOUNT, window, P, BASE)
    chains, seen, warnings = {0: machine.first()}, set(), []
    saved: Counter[str] = Counter()
    rng = random.Random(seed)
    while any(not state.done for state in chains.values()):
        key = rng.choice([k for k, state in chains.items() if not state.done])
        state = chains[key]
        page = served_list.page(state.url)
        step = machine.advance(state, state.url, page)
        # What the chain saves: the records it owns (a neighbour saves the others).
        owned = [r["sid"] for r in served_list.served if step.state.owns(r["created"], r["sent"])]
        saved.update(owned)
        seen.update(owned)
        # Every state survives its checkpoint: a resumed scan decides as this one would.
        assert plan.State.from_json(step.state.url, step.state.to_json()) == step.state
        warnings += [step.warning] if step.warning else []
        chains[key] = step.state
        for spawned in step.spawn:
            chains[len(chains)] = spawned
    # Each record of the window is saved by one chain only: the scan's counts are the archive's.
    assert [sid for sid in in_window(records, window) if saved[sid] > 1] == []
    return seen, served_list, warnings, chains[0]


def in_window(records: list[dict], window: Window = WINDOW) -> set[str]:
    return {r["sid"] for r in records if window.start.timestamp() <= r["created"] < window.end.timestamp()}


def needed_pages(listed: list[dict], window: Window = WINDOW) -> int:
    """Pages a reader of the unfiltered list must read to have passed every message of the window."""
    wanted = in_window(listed, window)
    last = max(i for i, r in enumerate(listed) if r["sid"] in wanted)
    return -(-(last + 1) // P)


ORDERS = ["created", "sent-created", "sent-sid", "sent-nulls-last", "shuffled"]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("order", ORDERS)
def test_every_message_of_the_window_is_read_in_every_order(order, seed):
    """Exact under every order, however the plan decides to stop."""
    records = make_list(seed)
    seen, _, _, _ = scan(ordered(records, order))
    assert in_window(records) <= seen


@pytest.mark.parametrize("order", ["created", "sent-created"])
def test_a_window_costs_what_it_holds_in_the_two_likely_orders(order):
    """(a) and (b): within 3 pages of what a reader in the list's order must pass, and far
    short of the whole list (2,000 messages, 40 pages)."""
    listed = ordered(make_list(7), order)
    _, served, warnings, state = scan(listed)
    assert len(served.requests) <= needed_pages(listed) + 3
    assert len(served.requests) < 20
    assert warnings == []
    assert state.order == {"created": plan.Order.CREATED, "sent-created": plan.Order.SENT_CREATED}[order]


def test_the_never_sent_block_in_creation_order_is_left_through_a_date_sent_filter():
    """(b): once a never-sent message older than the window shows, the rest of the block is
    older still; the sent part is read through DateSent>=, whose day is the window's (less the margin)."""
    _, served, _, _ = scan(ordered(make_list(4), "sent-created"))
    filtered = [url for url in served.requests if "DateSent%3E=" in url or "DateSent>=" in url]
    assert filtered, "the plan never switched to the sent part"
    assert filtered[0].startswith(f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json?DateSent%3E=2026-11-20&")
    assert all("DateSent" not in url for url in served.requests[: served.requests.index(filtered[0])])


def test_a_never_sent_block_in_no_creation_order_is_read_whole_and_said_once():
    """(c): the block must be read to its end; the sent part after it still stops at the window."""
    listed = ordered(make_list(5), "sent-sid")
    _, served, warnings, state = scan(listed)
    nulls = sum(1 for r in listed if r["sent"] is None)
    assert len(served.requests) >= nulls // P
    assert len(served.requests) < len(listed) // P  # the sent part's older end was not read
    assert len(warnings) == 1 and "null date_sent block" in warnings[0]
    assert state.order == plan.Order.SENT_NULLS


@pytest.mark.parametrize("order", ["sent-nulls-last", "shuffled"])
def test_a_list_in_no_known_order_is_read_to_its_end_and_said_once(order):
    """(d): every page of the list, one warning, and the order recorded as unordered."""
    listed = ordered(make_list(6), order)
    _, served, warnings, state = scan(listed)
    assert len(served.requests) == -(-len(listed) // P)
    assert len(warnings) == 1 and "reading the whole list" in warnings[0]
    assert state.order == plan.Order.UNORDERED


def test_an_older_window_is_read_exactly_and_stops_past_it():
    """--since/--until 50 to 40 days back: everything newer is passed, nothing older than the window's end of the list."""
    records = make_list(8, recent=300, older=3_000, days=120)
    window = Window(NOW - timedelta(days=50), NOW - timedelta(days=40))
    for order in ("created", "sent-created"):
        listed = ordered(records, order)
        seen, served, _, _ = scan(listed, window)
        assert in_window(records, window) <= seen
        assert len(served.requests) <= needed_pages(listed, window) + 3


def test_a_filtered_list_that_breaks_its_order_sends_the_scan_back_to_the_top():
    """Evidence against the order that justified skipping: the whole list, from the top."""
    machine = plan.Plan(LEGACY, ACCOUNT, WINDOW, P, BASE)
    state = plan.State("/2010-04-01/Accounts/x/Messages.json?DateSent%3E=2026-11-20&PageSize=50", plan.Phase.SENT)
    page = Page(records=[], next_url="/2010-04-01/Accounts/x/Messages.json?PageSize=50&PageToken=PA2", seen=2,
                outside_window=0, rejected=[], times=[(NOW.timestamp() - 10, NOW.timestamp() - 5),
                                                                   (NOW.timestamp() - 5, None)])
    step = machine.advance(state, state.url, page)
    assert (step.state.phase, step.state.url) == (plan.Phase.ALL, machine.first().url)
    assert step.warning is not None


def test_restart_goes_back_to_the_top_of_the_phase_and_keeps_what_was_learned():
    machine = plan.Plan(LEGACY, ACCOUNT, WINDOW, P, BASE)
    learned = plan.Evidence(created_desc=False, in_sent=True, last_sent=START)
    again = machine.restart(plan.State("/x?PageToken=PA9", plan.Phase.SENT, learned))
    assert again.phase == plan.Phase.SENT and "DateSent%3E=" in again.url and "PageToken" not in again.url
    assert again.evidence.created_desc is False and again.evidence.last_sent is None
    assert machine.restart(plan.State("/x?PageToken=PA9", plan.Phase.LIST, learned)).url == machine.first().url


def _page(next_url: str | None) -> Page:
    return Page(records=[], next_url=next_url, seen=0, outside_window=0, rejected=[])


def test_a_repeated_page_token_is_a_loop_even_when_page_grows():
    """The same PageToken handed out twice is a loop, though the Page number differs."""
    machine, guard = plan.Plan(COMMS, ACCOUNT, WINDOW, P, BASE), pagination.LoopGuard()

    def follow(url: str, link: str) -> None:
        step = machine.advance(plan.State(url), url, _page(link))
        guard.follow(step.state.phase, step.state.url, link)

    follow("/a", "/m.json?PageSize=2&Page=1&PageToken=PAx")
    follow("/b", "/m.json?PageSize=2&Page=2&PageToken=PAy")
    with pytest.raises(errors.PaginationLoopError):
        follow("/c", "/m.json?PageSize=2&Page=3&PageToken=PAx")


def test_the_plan_itself_keeps_no_positions():
    """Pure: the same state and page give the same step, however often (the guard is the worker's)."""
    machine = plan.Plan(COMMS, ACCOUNT, WINDOW, P, BASE)
    steps = [machine.advance(plan.State("/a"), "/a", _page("/m.json?PageToken=PAx")) for _ in range(2)]
    assert steps[0] == steps[1]


def test_a_link_to_another_host_never_becomes_a_checkpoint():
    machine = plan.Plan(COMMS, ACCOUNT, WINDOW, P, BASE)
    with pytest.raises(errors.ForeignURLError):
        machine.advance(plan.State("/a"), "/a", _page("https://evil.example/v1/Messages?pageToken=t"))


def test_a_v1_list_follows_its_links_to_the_end():
    """The server filters v1 lists by creation time: the plan follows `next` and stops at none."""
    machine = plan.Plan(COMMS, ACCOUNT, WINDOW, P, BASE)
    first = machine.first()
    assert first.url.startswith("/v1/Messages?startDate=")
    second = machine.advance(first, first.url, _page("/v1/Messages?pageToken=t1")).state
    assert second.url == "/v1/Messages?pageToken=t1"
    assert machine.advance(second, second.url, _page(None)).state.done


def test_a_checkpoint_from_before_plans_resumes_as_a_plain_position():
    """A cursor saved with no plan at all loads as the list's top phase at that position."""
    assert plan.State.from_json("/x?PageToken=PA1", None) == plan.State("/x?PageToken=PA1")


# Checkpoints as the release before the plan's split wrote them (twilio.scans.plan, scan_slices.plan).
SAVED_HEAD = ('{"phase":"sent","evidence":{"created_desc":false,"nulls_first":true,"null_block_desc":true,'
              '"sent_desc":true,"in_sent":false,"null_seen":false,"sent_after_null":false,"last_created":null,'
              '"last_null_created":null,"last_sent":1500000000.0,"skew":0.0,"warned":false,'
              '"sliced_from":1400000000.0}}')
SAVED_SLICE = ('{"phase":"slice","evidence":{"created_desc":true,"nulls_first":true,"null_block_desc":true,'
               '"sent_desc":true,"in_sent":false,"null_seen":false,"sent_after_null":false,"last_created":null,'
               '"last_null_created":null,"last_sent":null,"skew":0.0,"warned":false,"sliced_from":null},'
               '"chain":{"lo":1000000000.0,"hi":1100000000.0,"by_sent":false,"floor":1050000000.0,"desc":true,'
               '"last":1060000000.0,"pages":2,"span":100.0}}')


@pytest.mark.parametrize("saved", [SAVED_HEAD, SAVED_SLICE])
def test_a_checkpoint_of_the_earlier_release_loads_and_saves_back_the_same(saved):
    """The stored form did not change: an earlier release's checkpoint resumes after an upgrade."""
    state = plan.State.from_json("/x?PageToken=PA1", json.loads(saved))
    assert json.loads(orjson.dumps(state.to_json())) == json.loads(saved)
    assert state.phase in (plan.Phase.SENT, plan.Phase.SLICE)


def test_never_sent_messages_last_are_found_even_when_the_sent_part_looks_like_creation_order():
    """Sent one second after creation, the sent part fits `date_created` order too; the never-sent
    at the end of the list must still be read, so the scan cannot stop early and says why."""
    now = NOW.timestamp()
    sent = [{"sid": f"SM{i:032x}", "created": now - 600 * i - 60, "sent": now - 600 * i - 59} for i in range(1_000)]
    nulls = [{"sid": f"SM{i:032x}", "created": now - 30 * (i - 999), "sent": None} for i in range(1_000, 1_040)]
    listed = sent + sorted(nulls, key=lambda r: -r["created"])
    window = Window(NOW - timedelta(hours=1), NOW)
    seen, served, warnings, state = scan(listed, window)
    assert in_window(listed, window) <= seen
    assert len(served.requests) == -(-len(listed) // P)
    assert len(warnings) == 1 and "come last" in warnings[0]


def test_a_page_that_keeps_failing_with_500_is_asked_for_smaller_and_keeps_its_token():
    """After two 500s in a row the plan halves the page, down to 25; the token and filters stay."""
    url = "/2010-04-01/Accounts/AC1/Messages.json?DateSent%3E=2026-11-20&PageSize=1000&PageToken=PASM1"
    assert plan.retry_url(url, 1) == url
    smaller = plan.retry_url(url, 2)
    assert smaller == url.replace("PageSize=1000", "PageSize=500")
    assert plan.retry_url(smaller.replace("PageSize=500", "PageSize=40"), 2).count("PageSize=25") == 1
    assert plan.retry_url(smaller.replace("PageSize=500", "PageSize=25"), 5).count("PageSize=25") == 1


# ---- time slices ------------------------------------------------------------------------------


def v1_list(seed: int, count: int = 2_000, newest_first: bool = True) -> list[dict]:
    """A v1 list over the 7-day window (and a little beyond, which its filters leave out)."""
    rng = random.Random(seed)
    now = NOW.timestamp()
    records = [{"sid": f"c{i:08d}", "created": now - rng.uniform(0, 7.2 * DAY), "sent": None} for i in range(count)]
    return sorted(records, key=lambda r: -r["created"] if newest_first else r["created"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_dense_v1_window_is_read_in_slices_each_record_once_or_so(seed):
    """The first page shows 40 pages below it: slices take the older part, every record of the
    window is read, and the slices' partly filled last pages cost about one request each."""
    records = v1_list(seed)
    seen, served, warnings, _ = scan(records, source=COMMS, seed=seed)
    assert in_window(records) <= seen
    queries = {plan_query(url) for url in served.requests}
    assert len(queries) >= 8  # the head and the slices it spawned
    assert len(served.requests) <= -(-len(in_window(records)) // P) + len(queries) + 1
    assert warnings == []


def test_a_v1_list_served_oldest_first_is_still_read_exactly():
    """Slices stop above their lower neighbour only while newest first: this order proves
    nothing, so the head reads its whole query."""
    records = v1_list(4, newest_first=False)
    seen, served, _, _ = scan(records, source=COMMS)
    assert in_window(records) <= seen
    assert len(served.requests) >= -(-len(in_window(records)) // P)


def test_a_sparse_v1_window_costs_one_request():
    records = v1_list(5, count=30)
    seen, served, _, _ = scan(records, source=COMMS)
    assert in_window(records) <= seen and len(served.requests) == 1


@pytest.mark.parametrize("order", ["sent-created", "sent-sid"])
def test_the_legacy_sent_part_is_read_by_date_sent_day_slices(order):
    """(b), (c): the sent part of the window goes to DateSent queries of whole days, the
    older ones single days or day ranges, while the head reads the null block."""
    records = make_list(9, recent=2_500, older=1_500)
    seen, served, _, head = scan(ordered(records, order))
    assert in_window(records) <= seen
    days = [dict(parse_qsl(urlsplit(url).query)) for url in served.requests]
    assert any("DateSent" in q for q in days), "no single-day slice"
    assert any("DateSent<" in q and "DateSent>" in q for q in days) or sum("DateSent" in q for q in days) > 1
    assert head.evidence.sliced_from is not None and head.order in (plan.Order.SENT_CREATED, plan.Order.SENT_NULLS)


def test_a_slice_stops_past_its_floor_only_while_newest_first():
    machine = plan.Plan(COMMS, ACCOUNT, WINDOW, P, BASE)
    chain = plan.Chain(lo=START, hi=NOW.timestamp(), floor=START + DAY, pages=1, last=START + 2 * DAY)
    state = plan.State("/v1/Messages?pageToken=PA50", plan.Phase.LIST, plan.Evidence(), chain)

    def page(*created: float) -> Page:
        return Page(records=[], next_url="/v1/Messages?pageToken=PA100", seen=len(created), outside_window=0,
                    rejected=[], times=[(c, None) for c in created])

    assert machine.advance(state, state.url, page(START + 1.5 * DAY, START + 0.9 * DAY)).state.done
    grew = machine.advance(state, state.url, page(START + 2.5 * DAY, START + 0.9 * DAY)).state
    assert not grew.done and grew.chain.desc is False


def test_a_split_is_saved_with_its_page_and_resumes_as_it_was():
    """The spawned slices' states survive their checkpoint, and the head keeps its floor."""
    records = v1_list(6)
    machine = plan.Plan(COMMS, ACCOUNT, WINDOW, P, BASE)
    first = machine.first()
    step = machine.advance(first, first.url, MemoryList(records).page(first.url))
    assert step.spawn and step.state.chain.floor is not None
    for state in (step.state, *step.spawn):
        assert plan.State.from_json(state.url, state.to_json()) == state
    bounds = sorted((s.chain.lo, s.chain.hi) for s in step.spawn)
    assert bounds[0][0] == START and bounds[-1][1] == step.state.chain.floor
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # adjacent: no gap, no overlap


def plan_query(url: str) -> str:
    return pagination.query_of(url)


def test_first_pages_then_the_longest_chains_come_first():
    """The budget's order: a first page (it may split), then a chain of unknown length, then by
    pages left, most first."""
    machine = plan.Plan(COMMS, ACCOUNT, WINDOW, P, BASE)
    first = machine.first()
    step = machine.advance(first, first.url, MemoryList(v1_list(6)).page(first.url))
    head, slices = step.state, step.spawn
    assert first.priority == slices[0].priority == float("-inf")
    assert plan.State("/x", plan.Phase.LIST, plan.Evidence(in_sent=True)).priority == plan.UNKNOWN_LENGTH
    longer = dataclasses.replace(head.chain, last=head.chain.last + 10 * head.chain.span)
    assert plan.UNKNOWN_LENGTH < dataclasses.replace(head, chain=longer).priority < head.priority < 0


# ---- the legacy order's decisions, one by one --------------------------------------------------

E = plan.Evidence
D = plan_order.Decision
OLD, NEW = START - 10, START + 10


@pytest.mark.parametrize(("evidence", "decision"), [
    (E(created_desc=False, nulls_first=False), D.NO_ORDER),
    (E(last_created=NEW), D.FOLLOW),
    (E(nulls_first=False, last_created=OLD, in_sent=True, sent_after_null=True), D.DONE),
    (E(nulls_first=False, last_created=OLD, in_sent=True, last_sent=OLD), D.NULLS_MAY_BE_LAST),
    (E(created_desc=False, last_null_created=OLD), D.BLOCK_PASSED),
    (E(created_desc=False, null_block_desc=False, last_null_created=NEW), D.READ_BLOCK),
    (E(created_desc=False, sliced_from=OLD, in_sent=True, null_seen=True, sent_after_null=True), D.DONE),
])
def test_the_evidence_decides_what_the_unfiltered_list_allows(evidence, decision):
    """Each decision of the legacy order, from the evidence alone."""
    assert plan_order.decide(evidence, START) == decision
