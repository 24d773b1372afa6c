"""The concurrency budget: the AIMD arithmetic (no clock, no network) and the admission of requests."""

from __future__ import annotations

import logging

import anyio
import pytest

from sync import budget as budget_module
from sync.budget import Budget, Window, parse_concurrent
from sync.observe import Observer

SID = "AC" + "0" * 32


def test_a_window_starts_full_and_refuses_a_cap_below_one():
    """The window starts at the cap; a cap of 0 (or not a whole number) is refused."""
    window = Window(8)
    assert (window.capacity, window.full, window.round) == (8, True, 0)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="at least 1"):
            Window(bad)


def test_a_burst_of_429s_halves_the_window_once_per_round():
    """429s to requests admitted before the last decrease are ignored; a 429 of the new round halves again."""
    window = Window(8)
    assert window.shrink(admitted_in=0, ours=8) and window.capacity == 4 and window.round == 1
    assert [window.shrink(admitted_in=0, ours=7) for _ in range(6)] == [False] * 6
    assert window.capacity == 4
    assert window.shrink(admitted_in=1, ours=4) and window.capacity == 2


def test_the_window_never_goes_below_one():
    """Halving 1 stays 1, however many rounds of 429s."""
    window = Window(3)
    for round_ in range(5):
        window.shrink(admitted_in=round_, ours=1)
    assert window.capacity == 1 and window.round == 5


def test_additive_increase_climbs_one_per_window_of_answers_back_to_the_cap():
    """From 1, the window grows by one per window's worth of answers: 1+2+...+7 = 28 answers back to 8,
    reporting full on exactly the last, and never past the cap."""
    window = Window(8)
    for round_ in range(3):
        window.shrink(admitted_in=round_, ours=1)
    assert window.capacity == 1
    seen = []
    for _ in range(28):
        full = window.grow()
        seen.append(window.capacity)
        if full:
            break
    assert len(seen) == 28 and window.full and window.capacity == 8
    assert seen[:3] == [2, 2, 3] and sorted(seen) == seen
    assert window.grow() is False and window.capacity == 8


@pytest.mark.parametrize(
    ("ours", "concurrent", "after"),
    [
        (8, None, 4),  # no header: halve
        (8, 8, 4),  # the header counts only ours: halve
        (8, 12, 4),  # others hold 4, but halving already leaves room for them
        (4, 6, 3),  # others hold 2: at most ours - 1 = 3, below the halved 4
        (2, 10, 1),  # others hold 8 while we used 2: down to 1
        (1, 5, 1),  # never below 1
    ],
)
def test_a_crowded_account_drops_the_window_to_our_share(ours, concurrent, after):
    """A 429 whose Twilio-Concurrent-Requests exceeds our requests in flight: at most ours - 1."""
    window = Window(8)
    assert window.shrink(admitted_in=0, ours=ours, concurrent=concurrent)
    assert window.capacity == after


@pytest.mark.parametrize(("header", "value"), [("3", 3), (" 12 ", 12), ("0", 0), (None, None), ("", None),
                                               ("-1", None), ("many", None), ("2.5", None)])
def test_the_concurrent_requests_header_is_a_count_or_nothing(header, value):
    """Twilio-Concurrent-Requests read as a whole number; anything else is ignored, not trusted."""
    assert parse_concurrent(header) == value


class Told(Observer):
    def __init__(self) -> None:
        self.windows: list[tuple[str, int, int, int | None]] = []

    def budget(self, account_sid: str, window: int, in_flight: int, concurrent: int | None) -> None:
        self.windows.append((account_sid, window, in_flight, concurrent))


async def test_requests_beyond_the_window_wait_for_room_first_come_first_served():
    """With a window of 2, a third request waits until one of the two ends; waiters go in arrival order."""
    budget = Budget(2)
    order: list[int] = []
    release = [anyio.Event() for _ in range(4)]
    peak = 0

    async def request(i: int) -> None:
        nonlocal peak
        async with budget.slot():
            peak = max(peak, budget.in_flight)
            order.append(i)
            await release[i].wait()

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(request, i)
            await anyio.wait_all_tasks_blocked()
        assert order == [0, 1] and budget.in_flight == 2
        release[1].set()
        await anyio.wait_all_tasks_blocked()
        assert order == [0, 1, 2]
        release[0].set()
        await anyio.wait_all_tasks_blocked()
        assert order == [0, 1, 2, 3]
        release[2].set()
        release[3].set()
    assert peak == 2 and budget.in_flight == 0


async def test_waiters_of_a_lower_priority_go_first():
    """The scans' chains ask with a priority (sync/plan/ State.priority): when room opens, the
    lowest waiting goes first, and arrival order breaks ties."""
    budget = Budget(1)
    order: list[str] = []
    hold = anyio.Event()

    async def request(name: str, priority: float) -> None:
        async with budget.slot(priority):
            order.append(name)
            if name == "first":
                await hold.wait()

    async with anyio.create_task_group() as tg:
        for name, priority in (("first", 0), ("late", 5), ("long", -3), ("also long", -3), ("split", float("-inf"))):
            tg.start_soon(request, name, priority)
            await anyio.wait_all_tasks_blocked()
        hold.set()
    assert order == ["first", "split", "long", "also long", "late"]


async def test_a_429_shrinks_admission_and_success_reopens_it(caplog):
    """After a 429 halves the window, only that many are admitted; answers grow it back to the cap,
    logging the decrease and the return to full, and telling the observer each time."""
    told = Told()
    budget = Budget(4, account_sid=SID, observer=told)
    caplog.set_level(logging.INFO, logger="sync.budget")
    async with budget.slot() as first, budget.slot() as second:
        budget.answered(first, 429, "6")  # others hold 4 of Twilio's 6: ours - 1 = 1
        budget.answered(second, 429, "6")  # the same round: ignored
    assert budget.capacity == 1 and budget.lowest == 1
    assert (budget.concurrent, budget.peak_concurrent) == (6, 6)
    assert told.windows[0] == (SID, 1, 2, 6)

    async with anyio.create_task_group() as tg:
        admitted = []

        async def request() -> None:
            async with budget.slot() as slot:
                admitted.append(budget.in_flight)
                await anyio.sleep(0)
                budget.answered(slot, 200, "1")

        for _ in range(12):
            tg.start_soon(request)
    assert budget.capacity == 4 and budget.window.full
    assert max(admitted) <= 4 and admitted[0] == 1
    events = [(r.msg.name, r.msg.fields) for r in caplog.records]
    assert events[0] == ("budget.decrease", {"account": SID, "window": 1, "previous": 4, "cause": "429",
                                             "in_flight": 2, "concurrent": 6})
    assert [name for name, _ in events] == ["budget.decrease", "budget.full"]
    assert events[1][1]["window"] == 4 and told.windows[-1][1] == 4


async def test_a_cancelled_waiter_gives_its_place_back():
    """A request cancelled while it waits leaves the count as it was."""
    budget = Budget(1)
    async with budget.slot():
        with anyio.move_on_after(0.01):
            async with budget.slot():
                pytest.fail("admitted beyond the window")
        assert budget.in_flight == 1
    assert budget.in_flight == 0
    async with budget.slot():
        assert budget.in_flight == 1


@pytest.mark.parametrize("command", ["backfill", "run", "demo"])
def test_the_concurrency_flag_takes_a_whole_number_of_at_least_one(command, capsys):
    """--concurrency N reaches the command (default 8); 0 or a word is one line and exit 2."""
    from sync.cli import build_parser

    parser = build_parser()
    assert parser.parse_args([command]).concurrency == 8
    assert parser.parse_args([command, "--concurrency", "3"]).concurrency == 3
    for bad in ("0", "many"):
        with pytest.raises(SystemExit) as exited:
            parser.parse_args([command, "--concurrency", bad])
        assert exited.value.code == 2
        err = capsys.readouterr().err.strip()
        assert "--concurrency" in err and "\n" not in err


async def test_the_clients_budget_is_the_accounts_own_unless_given():
    """machinery gives each account's client a budget capped at the account's concurrency setting."""
    from dataclasses import replace

    from sync import machinery
    from sync.config import Secret, TwilioSettings

    account = TwilioSettings(account_sid=SID, username=SID, password=Secret("t"),
                             comms_base_url="http://127.0.0.1:9", api_base_url="http://127.0.0.1:9")
    async with machinery.twilio_client(replace(account, concurrency=3)) as client:
        assert client.budget.limit == 3 and client.budget.account_sid == SID
    async with machinery.twilio_client(account, concurrency=2) as client:
        assert client.budget.limit == 2


async def test_an_accounts_pages_in_hand_are_bounded_by_its_cap():
    """However many chains ask, at most PAGES_IN_HAND x the cap pages are asked for or unsaved;
    a page saved lets the next in, the lowest priority first."""
    budget = Budget(2)
    bound = budget_module.PAGES_IN_HAND * 2
    held = [await budget.pages.take(0) for _ in range(bound)]
    order: list[str] = []

    async def chain(name: str, priority: float) -> None:
        await budget.pages.take(priority)
        order.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(chain, "later", 1)
        tg.start_soon(chain, "first page", float("-inf"))
        await anyio.wait_all_tasks_blocked()
        assert order == [] and budget.pages.held == bound
        with held.pop():
            pass
        await anyio.wait_all_tasks_blocked()
        assert order == ["first page"]
        with held.pop():
            pass
    assert order == ["first page", "later"] and budget.pages.held == bound


async def test_a_ticket_is_given_back_once_however_its_block_ends():
    """Leaving a ticket's block frees its place, on an error too; leaving again frees nothing more."""
    pages = budget_module.PagesInHand(2)
    ticket = await pages.take()
    with pytest.raises(RuntimeError), ticket:
        raise RuntimeError("a failed request")
    assert pages.held == 0
    other = await pages.take()
    with ticket:
        pass
    assert pages.held == 1
    with other:
        pass
    assert pages.held == 0
