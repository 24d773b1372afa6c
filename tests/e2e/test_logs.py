"""--log-format json as a log collector reads it: every line on stderr is one JSON object whose
fields are whole and typed, and nothing else is written there."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from sync import emulator
from sync.emulator import FaultProfile
from tests.cli import cli_env, sync_cli

pytestmark = pytest.mark.timeout(120)


async def test_json_logs_are_json_lines_with_whole_typed_fields(db_dsn):
    emu = emulator.Emulator(seed=6, comms_messages=120, legacy_messages=120, legacy_days=7,
                            faults=FaultProfile(retry_after=1))
    emu.faults.inject("429", times=1)  # one retry, logged with its cause
    async with emulator.serve(emu) as url:
        result = await sync_cli("-v", "--log-format", "json", "backfill", "--page-size", "50",
                                env=cli_env(url, db_dsn))
    err = result.stderr.decode()
    assert result.returncode == 0, err
    entries = [json.loads(line) for line in err.splitlines()]  # any other line fails here
    assert entries and all(isinstance(e, dict) and isinstance(e["event"], str) for e in entries)
    for e in entries:
        datetime.fromisoformat(e["time"])

    (retry,) = [e for e in entries if e["event"] == "retry"]
    assert isinstance(retry["attempt"], int) and isinstance(retry["delay"], (int, float))
    assert "429" in retry["cause"] and retry["what"].startswith("GET /")

    starts = [e for e in entries if e["event"] == "scan.start"]
    assert {e["stream"] for e in starts} == {"comms_messages", "comms_operations", "legacy_messages"}
    for e in starts:
        start, end = e["window"]  # both bounds, whole
        assert datetime.fromisoformat(start) < datetime.fromisoformat(end)
    complete = [e for e in entries if e["event"] == "scan.complete"]
    assert len(complete) == 3
    for e in complete:
        assert all(isinstance(e[k], int) for k in ("scan", "pages", "seen", "inserted", "updated"))
        assert isinstance(e["seconds"], float)
    (refreshed,) = [e for e in entries if e["event"] == "analytics.refreshed"]  # once, when the scans are done
    assert refreshed["view"] == "twilio.daily_account_overview" and isinstance(refreshed["seconds"], float)
    assert entries.index(refreshed) > max(entries.index(e) for e in complete)
    assert emulator.DEFAULT_AUTH_TOKEN not in err


async def test_vv_adds_each_pages_timeline_and_no_librarys_debug_lines(db_dsn):
    """-vv: one scan.page event per page saved, its times in the order they happened, for finding
    a scan's critical path; debug lines of our own only."""
    emu = emulator.Emulator(seed=6, comms_messages=120, legacy_messages=120, legacy_days=7)
    async with emulator.serve(emu) as url:
        result = await sync_cli("-vv", "--log-format", "json", "backfill", "--page-size", "50",
                                env=cli_env(url, db_dsn))
    err = result.stderr.decode()
    assert result.returncode == 0, err
    entries = [json.loads(line) for line in err.splitlines()]
    pages = [e for e in entries if e["event"] == "scan.page"]
    complete = [e for e in entries if e["event"] == "scan.complete"]
    assert len(pages) == sum(e["pages"] for e in complete) > 3
    for e in pages:
        assert e["queued"] <= e["asked"] <= e["answered"] <= e["saved"]
    assert {e["logger"].split(".")[0] for e in entries if e["level"] == "debug"} == {"sync"}
    assert emulator.DEFAULT_AUTH_TOKEN not in err
