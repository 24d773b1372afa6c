"""`python -m sync emulator`'s legacy flags, run as a user runs them: a real process."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import anyio
import pytest

from sync.emulator import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, LEGACY_ORDERS
from sync.emulator.formats import DAY_MS, parse_rfc2822
from sync.emulator.orders import ORDERS
from tests.cli import cli_env, sync_cli

from .helpers import LEGACY_LIST, basic_auth, get_json

pytestmark = pytest.mark.timeout(60)


def one_line_error(result) -> str:
    err = result.stderr.decode().strip()
    assert "Traceback" not in err and err and "\n" not in err, err
    return err


async def test_help_names_the_legacy_flags_and_explains_each_order():
    """emulator --help lists the four legacy flags and one line per order."""
    result = await sync_cli("emulator", "--help", env=cli_env(None, None))
    assert result.returncode == 0
    text = result.stdout.decode()
    for flag in ("--legacy-days", "--legacy-history", "--legacy-history-days", "--legacy-order"):
        assert flag in text
    explained = [line.split(None, 1) for line in text.splitlines() if line.startswith("  ")]
    for order in LEGACY_ORDERS:
        assert [order, ORDERS[order].help] in explained, order


@pytest.mark.parametrize(("args", "needle"), [
    (("--legacy-order", "sideways"), "invalid choice: 'sideways'"),
    (("--legacy-history-days", "401"), "between 1 and 400"),
    (("--legacy-history", "-5"), "between 0 and"),
    (("--legacy-history", "10", "--legacy-days", "30", "--legacy-history-days", "20"), "must be more than --legacy-days"),
])  # fmt: skip
async def test_bad_legacy_flags_are_one_line_and_exit_2(args, needle):
    """A bad order, day count or history span: one line saying what is wrong, exit 2, no traceback."""
    result = await sync_cli("emulator", "--port", "0", *args, env=cli_env(None, None))
    assert result.returncode == 2
    assert needle in one_line_error(result)


@contextlib.asynccontextmanager
async def served(args: list[str]) -> AsyncIterator[aiohttp.ClientSession]:
    """`python -m sync emulator ARGS` as a process, and a session on the URL it prints, with the
    main account's credentials; the process ends on the way out."""
    command = [sys.executable, "-m", "sync", "emulator", *args]
    async with await anyio.open_process(command, env=cli_env(None, None)) as proc:
        try:
            out = b""
            while b" at http" not in out.split(b"\n", 1)[0] or b"\n" not in out:
                out += await proc.stdout.receive()
            base_url = out.split(b"\n", 1)[0].decode().rsplit(" at ", 1)[1].strip()
            async with aiohttp.ClientSession(base_url, headers=basic_auth(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)) as http:
                yield http
        finally:
            proc.terminate()


async def test_the_flags_reach_the_served_list():
    """--messages over --legacy-days plus --legacy-history, served in --legacy-order."""
    args = ["--port", "0", "--messages", "20", "--legacy-days", "7", "--legacy-history", "50",
            "--legacy-history-days", "100", "--legacy-order", "created"]  # fmt: skip
    async with served(args) as http:
        status, page = await get_json(http, LEGACY_LIST, {"PageSize": "1000"})
    assert status == 200
    created = [parse_rfc2822(m["date_created"]) for m in page["messages"]]
    assert len(created) == 70
    assert created == sorted(created, reverse=True)
    # History keeps three minutes clear of its span's ends: the test takes less than that.
    now = time.time() * 1000
    assert sum(1 for c in created if c < now - 7 * DAY_MS) == 50
    assert all(c > now - 100 * DAY_MS for c in created)


async def test_subaccounts_flag_serves_them_each_with_their_messages():
    """--subaccounts N --subaccount-messages M: Accounts.json lists the main account and N more, each
    subaccount's legacy list holding M messages, read with the main account's credentials."""
    async with served(["--port", "0", "--messages", "5", "--subaccounts", "3", "--subaccount-messages", "4"]) as http:
        status, listing = await get_json(http, "/2010-04-01/Accounts.json")
        sub = listing["accounts"][1]["sid"]
        _, page = await get_json(http, f"/2010-04-01/Accounts/{sub}/Messages.json", {"PageSize": "1000"})
    assert status == 200 and len(listing["accounts"]) == 4
    assert len(page["messages"]) == 4 and {m["account_sid"] for m in page["messages"]} == {sub}
