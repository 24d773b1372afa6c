"""The one check every recovery test ends with: the archive holds exactly what the emulator
serves inside the scanned windows, and each row was inserted by exactly one committed page."""

from __future__ import annotations

import json

import asyncpg

from sync import parsing
from sync.emulator import Emulator
from sync.models import STREAMS, Window
from sync.store import Store

KEY = {"legacy_messages": "sid", "comms_messages": "id", "comms_operations": "id"}


def served(emu: Emulator, stream: str, window: Window) -> dict[str, dict]:
    """The emulator's records of `stream` created inside `window`, by id / SID."""
    payloads = {"legacy_messages": emu.legacy_payloads, "comms_messages": emu.comms_payloads,
                "comms_operations": emu.operation_payloads}[stream]()
    created, parse = ("date_created", parsing.rfc2822) if stream == "legacy_messages" else ("createdAt", parsing.rfc3339)
    return {p[KEY[stream]]: p for p in payloads if window.contains(parse(p[created]))}


async def assert_archive_equals_emulator(store: Store, emu: Emulator, streams=STREAMS) -> dict[str, int]:
    """Every scan complete; rows == served records, payload for payload; sum(rows_inserted) == rows,
    so no page was saved twice. Returns the row count per stream."""
    scans = await store.fetch("SELECT stream, status, window_start, window_end, rows_inserted FROM twilio.scans")
    assert {s["status"] for s in scans} == {"complete"}, "every interrupted scan was resumed to completion"
    counts = {}
    for stream in streams:
        passes = [s for s in scans if s["stream"] == stream]
        window = Window(min(s["window_start"] for s in passes), max(s["window_end"] for s in passes))
        expected = served(emu, stream, window)
        rows = await store.fetch(f"SELECT {KEY[stream]} AS k, raw FROM twilio.{stream}")
        assert {r["k"]: json.loads(r["raw"]) for r in rows} == expected, stream
        assert sum(s["rows_inserted"] for s in passes) == len(expected), f"{stream}: a page was saved twice"
        counts[stream] = len(expected)
    return counts


async def committed_pages(dsn: str) -> int:
    """Pages saved so far over all scans, on a connection of its own; 0 while the database is
    away (a test may be restarting it)."""
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError):
        return 0
    try:
        return await conn.fetchval("SELECT coalesce(sum(pages), 0) FROM twilio.scans")
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return 0
    finally:
        await conn.close()
