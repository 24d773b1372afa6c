"""Media of legacy messages through the commands, as real processes against the emulator and a real
Postgres: `run` archives the media of messages created while it runs and marks deleted media after
its re-check; a kill -9 in the middle of a media backlog loses nothing."""

from __future__ import annotations

import json
import os
import signal
import sys

import anyio
import asyncpg
import pytest

from sync import emulator
from tests.cli import answer_until, cli_env, held_after, sync_cli
from tests.service import FAST, Service, eventually, query

pytestmark = pytest.mark.timeout(180)


async def media_rows(dsn: str, message_sid: str) -> list[asyncpg.Record]:
    return await query(dsn, "SELECT sid, deleted_at, raw FROM twilio.legacy_media WHERE message_sid = $1 "
                            "ORDER BY sid", message_sid)


async def archived_media(dsn: str) -> dict[str, dict]:
    return {r["sid"]: json.loads(r["raw"]) for r in await query(dsn, "SELECT sid, raw FROM twilio.legacy_media")}


def served_media(emu: emulator.Emulator, archived_messages: set[str]) -> dict[str, dict]:
    return {item["sid"]: item for m in emu.legacy_payloads() if m["sid"] in archived_messages
            for item in emu.media.items(m)}


async def test_run_archives_the_media_of_new_messages_and_marks_deleted_media(db_dsn):
    """A message with media created while `run` runs gets its media; an item deleted at Twilio
    stays archived and is marked deleted after the next re-check (--media-interval)."""
    emu = emulator.Emulator(seed=23, comms_messages=50, legacy_messages=100, legacy_days=7)
    async with emulator.serve(emu) as url:
        async with Service(cli_env(url, db_dsn), *FAST, "--media-interval", "2"):
            mms = emu.add_legacy_message(num_media="3", body="")
            await eventually(lambda: _count(db_dsn, mms["sid"], 3), what="the new message's 3 media items")
            items = emu.media.items(mms)
            assert {r["sid"]: json.loads(r["raw"]) for r in await media_rows(db_dsn, mms["sid"])} == \
                {i["sid"]: i for i in items}
            emu.media.delete(items[1]["sid"])
            await eventually(lambda: _deleted(db_dsn, mms["sid"]), what="the deleted item marked")
            rows = await media_rows(db_dsn, mms["sid"])
            assert [r["sid"] for r in rows if r["deleted_at"] is not None] == [items[1]["sid"]]
            assert len(rows) == 3, "a deleted item is kept"


async def _count(dsn: str, message_sid: str, n: int) -> bool:
    return len(await media_rows(dsn, message_sid)) == n


async def _deleted(dsn: str, message_sid: str) -> bool:
    return any(r["deleted_at"] is not None for r in await media_rows(dsn, message_sid))


async def lists_read(dsn: str) -> int:
    return (await query(dsn, "SELECT count(*) FROM twilio.legacy_media_lists"))[0][0]


async def test_kill_9_during_a_media_backlog_loses_nothing(db_dsn):
    """Killed after some batches of media lists committed and before the rest: the rerun reads only
    what was not saved, and the archive holds every item of every message with media."""
    emu = emulator.Emulator(seed=29, comms_messages=0, legacy_messages=1500, legacy_days=7, mms_share=0.3)
    async with emulator.serve(emu) as url:
        env = cli_env(url, db_dsn)
        archived = await sync_cli("backfill", "--source", "legacy", "--no-media", env=env)
        assert archived.returncode == 0, archived.stderr.decode()
        owed = (await query(db_dsn, "SELECT count(*) FROM twilio.legacy_messages WHERE num_media > 0"))[0][0]
        assert owed > 200, "several batches of media lists are owed"
        async with held_after(emu, 5):
            proc = await anyio.open_process([sys.executable, "-m", "sync", "backfill", "--source", "legacy"], env=env)
            await answer_until(emu, proc, lambda: lists_read(db_dsn), lambda n: n > 0)
            os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
        saved = await lists_read(db_dsn)
        assert proc.returncode == -signal.SIGKILL and 0 < saved < owed
        before_rerun = emu.request_counts["media_list"]
        final = await sync_cli("backfill", "--source", "legacy", env=env)
        assert final.returncode == 0, final.stderr.decode()
        assert "media:" in final.stdout.decode()
        # Only the lists not saved before the kill were read again.
        assert emu.request_counts["media_list"] - before_rerun == owed - saved
    messages = {r[0] for r in await query(db_dsn, "SELECT sid FROM twilio.legacy_messages")}
    assert await archived_media(db_dsn) == served_media(emu, messages)
    assert await lists_read(db_dsn) == owed
    status = await sync_cli("status", env=cli_env(None, db_dsn))
    assert "media: " in status.stdout.decode() and "0 messages owe" in status.stdout.decode()
