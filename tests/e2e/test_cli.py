"""The CLI as a user runs it: a real process, real Postgres, the emulator over HTTP."""

from __future__ import annotations

import os
import re
import signal
import json
import sys
from datetime import datetime, timedelta, timezone

from urllib.parse import parse_qsl, unquote, urlsplit

import anyio
import asyncpg
import pytest

from sync import budget, emulator
from sync.emulator import FaultProfile
from sync.store import Store
from tests.archive import assert_archive_equals_emulator, committed_pages
from tests.cli import answer_until, cli_env, held_after, interruptible, sync_cli, until_held

pytestmark = pytest.mark.timeout(180)


def one_line_error(result) -> str:
    err = result.stderr.decode()
    assert "Traceback" not in err, err
    assert err.strip() and "\n" not in err.strip(), f"expected one line, got: {err!r}"
    return err


async def test_kill_9_mid_backfill_then_rerun_archives_exactly_once(db_dsn, store):
    """Two kill -9s at arbitrary pages, then a rerun: the archive equals the API's window, no row twice."""
    emu = emulator.Emulator(seed=3, comms_messages=4000, legacy_messages=4000, legacy_days=7)
    async with emulator.serve(emu, host="127.0.0.1", port=0) as url:
        env = cli_env(url, db_dsn)
        for answered in (12, 45):  # of some 400 requests
            async with held_after(emu, answered):
                proc = await anyio.open_process([sys.executable, "-m", "sync", "backfill", "--page-size", "20"],
                                                env=env)
                await until_held(emu, proc)
                os.kill(proc.pid, signal.SIGKILL)
                await proc.wait()
            assert proc.returncode == -signal.SIGKILL
        assert await committed_pages(db_dsn) > 0
        final = await sync_cli("backfill", "--page-size", "20", env=env)
        assert final.returncode == 0, final.stderr.decode()
        assert "(resumed)" in final.stdout.decode()

    await assert_archive_equals_emulator(store, emu)


async def slices_of(dsn: str) -> list[asyncpg.Record]:
    """The running legacy scan's slices: id, cursor (null: read) and pages, on a connection of its own."""
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch("SELECT s.id, s.cursor, s.pages, s.plan FROM twilio.scan_slices s "
                                "JOIN twilio.scans c ON c.id = s.scan_id "
                                "WHERE c.stream = 'legacy_messages' AND c.status = 'running' ORDER BY s.id")
    finally:
        await conn.close()


async def test_kill_9_mid_slices_resumes_each_slice_and_never_reads_a_finished_one(db_dsn, store):
    """Each slice's position is part of the checkpoint: killed while some slices are read and
    others half-way, the rerun asks each unfinished slice for its saved next page, asks nothing
    of a finished slice's query, and asks again only for what was in flight at the kill."""
    emu = emulator.Emulator(seed=4, comms_messages=0, legacy_messages=6_000, legacy_days=7,
                            legacy_history=6_000, legacy_history_days=120, legacy_order="sent-created",
                            faults=FaultProfile(latency=0.02))
    async with emulator.serve(emu, host="127.0.0.1", port=0) as url:
        env = cli_env(url, db_dsn)
        command = ["backfill", "--source", "legacy", "--page-size", "50", "--concurrency", "4"]
        async with held_after(emu, 30):  # of some 130 requests
            proc = await anyio.open_process([sys.executable, "-m", "sync", *command], env=env)
            await answer_until(emu, proc, lambda: slices_of(db_dsn), _killable)
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
        rows = await slices_of(db_dsn)
        head = (await store.fetch("SELECT cursor FROM twilio.scans WHERE stream = 'legacy_messages'"))[0][0]
        unread = (head is not None) + sum(r["cursor"] is not None for r in rows)
        done = [r for r in rows if r["cursor"] is None]
        waiting = {r["cursor"] for r in rows if r["cursor"] is not None and r["pages"]}
        before_rerun = len(emu.list_log)
        final = await sync_cli(*command, env=env)
        assert final.returncode == 0, final.stderr.decode()
        assert "(resumed)" in final.stdout.decode()
        asked = [r.path for r in emu.list_log[before_rerun:]]
        assert {unquote(c) for c in waiting} <= {unquote(p) for p in asked}, "a half-read slice did not go on from its page"
        for row in done:
            chain = json.loads(row["plan"])["chain"]
            lo, hi = chain["lo"], chain["hi"]
            assert not any(_date_sent_range(p) == (lo, hi) for p in asked), "a finished slice was read again"
        saved = (await store.fetch("SELECT pages FROM twilio.scans WHERE stream = 'legacy_messages'"))[0][0]
        # Asked twice: only what was in hand at the kill, asked for or not yet saved: two pages
        # at most per unfinished chain (one saving, the next fetched), and the account's bound.
        assert emu.list_requests("legacy_list") <= saved + min(2 * unread, budget.PAGES_IN_HAND * 4)
    await assert_archive_equals_emulator(store, emu, streams=("legacy_messages",))


async def sessions(dsn: str) -> set[int]:
    """The server processes of the sessions on the database now (the test's own pool among them)."""
    conn = await asyncpg.connect(dsn)
    try:
        return {r[0] for r in await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                              "AND backend_type = 'client backend'")}
    finally:
        await conn.close()


async def saved_pages(dsn: str, ours: set[int]) -> int:
    """Pages saved by every scan so far, once no session but `ours` is left on the database: a
    commit a killed CLI sent before the kill is counted here, not in the next run."""
    conn = await asyncpg.connect(dsn)
    try:
        while await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                                  "AND NOT pid = ANY($1::int[])", list(ours)):
            await anyio.sleep(0.02)
        return await conn.fetchval("SELECT coalesce(sum(pages), 0)::int FROM twilio.scans")
    finally:
        await conn.close()


async def test_each_kill_9_loses_at_most_the_pages_in_hand_and_the_rerun_asks_only_for_what_it_saves(db_dsn, store):
    """Three kill -9s of a backfill reading many slices at once, then a rerun. Every request a
    killed run made whose page it did not save held one of the account's pages in hand, so no
    kill wastes more than PAGES_IN_HAND x --concurrency requests; and the rerun re-reads nothing
    (no slice split again, no first page or head asked twice): each request is a page it saves."""
    emu = emulator.Emulator(seed=5, comms_messages=3_000, legacy_messages=3_000, legacy_days=7,
                            legacy_history=6_000, legacy_history_days=120, legacy_order="sent-created")
    concurrency = 2
    in_hand = budget.PAGES_IN_HAND * concurrency
    # Without media: its lists are requests no scan page accounts for (tests/e2e/test_media.py
    # kills a media backlog).
    command = ["backfill", "--since", _days_ago(130), "--page-size", "50",
               "--concurrency", str(concurrency), "--no-media"]
    async with emulator.serve(emu, host="127.0.0.1", port=0) as url:
        env = cli_env(url, db_dsn)
        ours, saved = await sessions(db_dsn), 0
        for _ in range(3):
            asked = len(emu.list_log)
            async with held_after(emu, 25):  # of some 250 requests
                proc = await anyio.open_process([sys.executable, "-m", "sync", *command], env=env)
                await until_held(emu, proc)
                os.kill(proc.pid, signal.SIGKILL)
                await proc.wait()
            now_saved = await saved_pages(db_dsn, ours)
            assert now_saved > saved, "a killed run saved no page: the kill came too early to say anything"
            wasted = (len(emu.list_log) - asked) - (now_saved - saved)
            assert wasted <= in_hand, f"a kill lost {wasted} requests, beyond the {in_hand} pages in hand"
            saved = now_saved
        asked = len(emu.list_log)
        final = await sync_cli(*command, env=env)
        assert final.returncode == 0, final.stderr.decode()
        assert "(resumed)" in final.stdout.decode()
        assert len(emu.list_log) - asked == await saved_pages(db_dsn, ours) - saved
    await assert_archive_equals_emulator(store, emu)


def _days_ago(days: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).strftime("%Y-%m-%d")


def _killable(slices: list[asyncpg.Record]) -> bool:
    """Whether one slice is read and another is half-read with pages saved."""
    return any(r["cursor"] is None for r in slices) and any(r["cursor"] and r["pages"] for r in slices)


def _date_sent_range(path: str) -> tuple[float, float | None] | None:
    """The [lo, hi) of date_sent, in epoch seconds, that a legacy request's DateSent filters ask for."""
    query = dict(parse_qsl(urlsplit(path).query))

    def day(value: str) -> float:
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp()

    if "DateSent" in query:
        return day(query["DateSent"]), day(query["DateSent"]) + 86_400
    if "DateSent>" in query:
        return day(query["DateSent>"]), day(query["DateSent<"]) + 86_400 if "DateSent<" in query else None
    return None


async def test_wrong_credentials_say_so_in_one_line(db_dsn, base_url):
    """A wrong auth token: one line naming the credentials, exit 1, and the token is not echoed."""
    result = await sync_cli("backfill", env=cli_env(base_url, db_dsn, TWILIO_AUTH_TOKEN="wrong-token-4f2a9"))
    assert result.returncode == 1
    err = one_line_error(result)
    assert "refused the credentials" in err and "401" in err
    assert "wrong-token-4f2a9" not in err + result.stdout.decode()


async def test_unreachable_database_says_so_in_one_line():
    """An unreachable DATABASE_URL: one line, exit 1, and its password is not echoed."""
    env = cli_env("http://127.0.0.1:9", "postgresql://archiver:hunter2pw@127.0.0.1:9/archive")
    result = await sync_cli("backfill", env=env)
    assert result.returncode == 1
    err = one_line_error(result)
    assert "cannot connect to the database" in err
    assert "hunter2pw" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("backfill", "--frobnicate"), "unrecognized arguments"),
        (("backfill", "--since", "last tuesday"), "--since"),
        (("backfill", "--since", "2025-06-18", "--until", "2025-06-01"), "window is empty"),
        (("backfill", "--source", "fax"), "invalid choice"),
        (("backfill", "--page-size", "5000"), "between 1 and 1000"),
        (("backfill", "--bodies", "hash"), "TWILIO_ARCHIVE_BODY_KEY"),
        (("emulator", "--faults", "429=1.5"), "probability"),
        (("teleport",), "invalid choice"),
    ],
)
async def test_bad_flags_and_dates_say_so_in_one_line(args, needle):
    """Each bad flag or date: exit 2 with one line saying what is wrong, no traceback."""
    result = await sync_cli(*args, env=cli_env("http://127.0.0.1:9", "postgresql://u@127.0.0.1:9/x"))
    assert result.returncode == 2
    assert needle in one_line_error(result)


async def test_missing_credentials_say_which_variable(db_dsn):
    """Without TWILIO_ACCOUNT_SID the backfill names the variable to set."""
    result = await sync_cli("backfill", env=cli_env(None, db_dsn))
    assert result.returncode == 2
    assert "TWILIO_ACCOUNT_SID is not set" in one_line_error(result)


async def test_backfill_before_migrate_says_to_migrate(empty_database_dsn, base_url):
    """A database without the schema gets a one-line pointer to `migrate`."""
    result = await sync_cli("backfill", env=cli_env(base_url, empty_database_dsn))
    assert result.returncode == 1
    assert "python -m sync migrate" in one_line_error(result)


async def test_migrate_backfill_status_from_an_empty_database(empty_database_dsn, base_url, emu):
    """The README's path: migrate, backfill, then status shows rows and the completed scans."""
    env = cli_env(base_url, empty_database_dsn)
    migrated = await sync_cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr.decode()
    assert "schema is at revision" in migrated.stdout.decode()
    filled = await sync_cli("backfill", env=env)
    assert filled.returncode == 0, filled.stderr.decode()
    status = await sync_cli("status", env=env)
    assert status.returncode == 0, status.stderr.decode()
    out = status.stdout.decode()
    async with await Store.connect(empty_database_dsn) as store:
        for stream in ("comms_messages", "comms_operations", "legacy_messages"):
            assert f"{stream}: {await store.status.count(stream):,} rows" in out
    assert out.count("last complete scan: #") == 3
    assert emulator.DEFAULT_AUTH_TOKEN not in out + status.stderr.decode() + filled.stderr.decode()


async def test_status_shows_an_in_flight_checkpoint(db_dsn, store):
    """After a kill -9, status shows the interrupted scan with its saved pages, resume position and slices."""
    emu = emulator.Emulator(seed=5, comms_messages=10, legacy_messages=3000, legacy_days=7)
    async with emulator.serve(emu, host="127.0.0.1", port=0) as url:
        env = cli_env(url, db_dsn)
        async with held_after(emu, 10):  # of some 300 requests
            proc = await anyio.open_process(
                [sys.executable, "-m", "sync", "backfill", "--source", "legacy", "--page-size", "10"], env=env)
            await answer_until(emu, proc, lambda: committed_pages(db_dsn), lambda pages: pages >= 5)
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
        status = await sync_cli("status", env=env)
    out = status.stdout.decode()
    assert status.returncode == 0
    assert "in flight: #" in out and "resumes at /2010-04-01/Accounts/" in out
    # The head's first page handed the sent part to a slice: status counts them.
    assert re.search(r"time slices: \d+ of [1-9]\d* read", out), out


async def test_demo_runs_with_no_configuration(tmp_path_factory):
    """`demo` on a machine with nothing configured: embedded Postgres, emulator, backfill, a query, a daily overview."""
    data_dir = tmp_path_factory.mktemp("demo", numbered=True)
    result = await sync_cli("demo", "--messages", "400", env=cli_env(None, None, TWILIO_ARCHIVE_DATA_DIR=str(data_dir)))
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    for needle in ("twilio.legacy_messages", "twilio.comms_messages", "twilio.comms_operations",
                   "records/s", "FROM twilio.messages", "FROM twilio.daily_account_overview"):
        assert needle in out
    overview = out.split("FROM twilio.daily_account_overview", 1)[1].splitlines()
    days = [line for line in overview if re.match(r"\d{4}-\d{2}-\d{2} (legacy|comms) ", line)]
    assert {line.split()[1] for line in days} == {"legacy", "comms"}, "a daily row per API"
    archived = re.findall(r"twilio\.(?:legacy|comms)_messages ([\d,]+)", out.split("archived rows:", 1)[1].splitlines()[0])
    total = sum(int(n.replace(",", "")) for n in archived)
    assert len(archived) == 2 and total > 0
    # A comms row has no currency, so its message count is one column further left.
    assert sum(int(line.split()[2 if line.split()[1] == "comms" else 3].replace(",", "")) for line in days) == total
    assert "Traceback" not in result.stderr.decode()


async def test_ctrl_c_stops_with_one_line_and_the_rerun_resumes(db_dsn, store):
    """SIGINT mid-backfill --since D: exit 130 with one line, saved pages kept, and the same command resumes."""
    emu = emulator.Emulator(seed=9, comms_messages=10, legacy_messages=3000, legacy_days=7)
    since = (datetime.now(timezone.utc) - timedelta(days=3)).strftime("%Y-%m-%d")
    command = ["backfill", "--source", "legacy", "--page-size", "10", "--since", since]
    async with emulator.serve(emu, host="127.0.0.1", port=0) as url:
        env = cli_env(url, db_dsn)
        async with held_after(emu, 10):  # of some 130 requests
            with interruptible():
                proc = await anyio.open_process([sys.executable, "-m", "sync", *command], env=env)
            await answer_until(emu, proc, lambda: committed_pages(db_dsn), lambda pages: pages >= 5)
            await until_held(emu, proc)
            proc.send_signal(signal.SIGINT)
            await proc.wait()
        err = b"".join([chunk async for chunk in proc.stderr]).decode()
        saved = await committed_pages(db_dsn)
        rerun = await sync_cli(*command, env=env)  # its "now" differs: the window end moved on
    assert proc.returncode == 130
    assert "interrupted; the next run resumes" in err and "Traceback" not in err
    assert rerun.returncode == 0 and "(resumed)" in rerun.stdout.decode()
    scans = await store.fetch("SELECT status, pages FROM twilio.scans")
    assert len(scans) == 1, "the interrupted scan was resumed, not abandoned for a new one"
    assert scans[0]["status"] == "complete" and scans[0]["pages"] > saved >= 5
