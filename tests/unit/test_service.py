"""The service's decisions, against in-memory stand-ins of our own store and client
(tests/fakes.py): which kind of scan a turn runs, over which window (sync/schedule.py), what a
stream does before and after it (deletions, hydration: sync/turns.py), and when the replica is
ready (sync/service.py). The service runs against Postgres and the emulator in
tests/integration/test_service_scans.py and tests/e2e/."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from sync import plan, sources
from sync.config import Secret, TwilioSettings
from sync.models import COMMS_MESSAGES, COMMS_OPERATIONS, LEGACY_MESSAGES, STREAMS
from sync.schedule import Schedule, StreamHealth, Turn, overdue, scan_kind
from sync.service import Service
from tests import fakes

NOW = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)
SCHEDULE = Schedule(interval=60, full_interval=3_600, lookback=900)
ACCOUNT = TwilioSettings(account_sid=fakes.ACCOUNT, username=fakes.ACCOUNT, password=Secret("t"),
                         comms_base_url="https://comms.twilio.com", api_base_url="https://api.twilio.com")


@pytest.mark.parametrize(("stream", "kind", "proves", "hydrates"), [
    (LEGACY_MESSAGES, "full", True, False),
    (LEGACY_MESSAGES, "recent", False, False),
    (COMMS_MESSAGES, "full", False, True),
    (COMMS_MESSAGES, "recent", False, True),
    (COMMS_OPERATIONS, "full", False, False),
])
def test_what_a_turn_does_is_the_sources_to_say(stream, kind, proves, hydrates):
    """Deletions are proved on a full scan of a list that proves them; hydration follows a hydrated list."""
    turn = Turn.of(sources.BY_STREAM[stream], kind, NOW, SCHEDULE, hydrate=True)
    assert (turn.prove_deletions, turn.hydrate) == (proves, hydrates)


def test_hydration_switched_off_is_off_for_every_stream():
    """--no-hydrate: no turn fetches content, whatever its source."""
    assert not any(Turn.of(sources.BY_STREAM[s], "full", NOW, SCHEDULE, hydrate=False).hydrate for s in STREAMS)


@pytest.mark.parametrize(("kind", "reach"), [("full", timedelta(days=7)), ("recent", timedelta(seconds=900))])
def test_a_full_turn_reads_the_retention_window_and_a_recent_one_the_lookback(kind, reach):
    """A full scan reaches back the retention window; a recent one the schedule's look-back."""
    turn = Turn.of(sources.BY_STREAM[COMMS_MESSAGES], kind, NOW, SCHEDULE, hydrate=True)
    assert (turn.window.end, NOW - turn.window.start) == (NOW, reach)


@pytest.mark.parametrize(("last_full", "kind"), [
    (None, "full"),
    (NOW - timedelta(hours=2), "full"),
    (NOW - timedelta(hours=1), "full"),
    (NOW - timedelta(minutes=59), "recent"),
])
def test_a_full_scan_is_due_once_the_last_is_older_than_full_interval(last_full, kind):
    """A stream never fully scanned, or not within full_interval, gets a full scan; else a recent one."""
    assert scan_kind(last_full, NOW, SCHEDULE) == kind



@pytest.mark.parametrize(("health", "problems"), [
    (StreamHealth(started=1_000.0 - 301), ["AC1 legacy_messages: no scan has completed yet"]),
    (StreamHealth(started=1_000.0 - 10), []),
    (StreamHealth(last_error="HTTP 500", failed_at=1_000.0 - 5),
     ["AC1 legacy_messages: its last scan failed: HTTP 500"]),
    (StreamHealth(last_error="HTTP 500", failed_at=1_000.0 - 400), []),
    (StreamHealth(last_success=1_000.0 - 180), []),
    (StreamHealth(last_success=1_000.0 - 3_000), []),
    (StreamHealth(last_success=1_000.0 - 400, started=1_000.0 - 301),
     ["AC1 legacy_messages: no scan completed in 301 s"]),
])
def test_a_stream_is_overdue_when_its_turn_here_failed_or_runs_past_three_intervals_or_five_minutes(health, problems):
    """A turn in flight here past max(3 intervals, 300 s), or a recent failure here, keeps the replica
    unready; between turns, a stream another replica may be working is not this one's concern."""
    assert overdue({("AC1", LEGACY_MESSAGES): health}, 1_000.0, SCHEDULE) == problems

async def test_a_full_scan_in_flight_is_resumed_before_any_recent_one():
    """A running full scan makes the turn full, however recent the last complete one."""
    store = fakes.Store()
    store.scans.finished[(fakes.ACCOUNT, LEGACY_MESSAGES, "full")] = NOW
    service = Service(store=store, accounts=[ACCOUNT], schedule=SCHEDULE)
    assert await service.turns.kind(fakes.ACCOUNT, LEGACY_MESSAGES, NOW) == "recent"
    window = Turn.of(sources.BY_STREAM[LEGACY_MESSAGES], "full", NOW, SCHEDULE, hydrate=True).window
    await store.scans.start(fakes.ACCOUNT, LEGACY_MESSAGES, "full", window, plan.State(None))
    assert await service.turns.kind(fakes.ACCOUNT, LEGACY_MESSAGES, NOW) == "full"


async def test_a_full_legacy_turn_starts_its_seen_set_afresh_and_checks_deletions():
    """Its seen keys are cleared before a new full scan, kept while it runs, and checked after it."""
    store = fakes.Store()
    twilio = fakes.Twilio([{"sid": f"SM{i:032x}", "created": time.time() - 60 * i - 60,
                            "sent": time.time() - 60 * i - 59} for i in range(30)])
    service = Service(store=store, accounts=[ACCOUNT], schedule=SCHEDULE, page_size=10)
    service.health[(fakes.ACCOUNT, LEGACY_MESSAGES)] = StreamHealth()
    await service.turns.take(ACCOUNT, fakes.Client(twilio), LEGACY_MESSAGES)
    assert store.deletions.cleared == [(fakes.ACCOUNT, LEGACY_MESSAGES)]
    assert len(store.pages.seen) == 30
    assert service.health[(fakes.ACCOUNT, LEGACY_MESSAGES)].last_success is not None
    assert store.hydration.asked == []
    assert store.media.asked == [fakes.ACCOUNT]


@pytest.mark.parametrize(("stream", "media_interval", "asked"), [
    (LEGACY_MESSAGES, 86_400.0, [fakes.ACCOUNT]),
    (LEGACY_MESSAGES, None, []),
    (COMMS_MESSAGES, 86_400.0, []),
])
async def test_only_a_legacy_turn_follows_media_and_not_when_it_is_switched_off(stream, media_interval, asked):
    """After its scan the legacy list's media owed is asked for (run --no-media: never); other lists have none."""
    store = fakes.Store()
    service = Service(store=store, accounts=[ACCOUNT], schedule=SCHEDULE, page_size=10, media_interval=media_interval)
    await service.turns.take(ACCOUNT, fakes.Client(fakes.Twilio([])), stream)
    assert store.media.asked == asked


async def test_a_v1_messages_turn_hydrates_and_keeps_no_seen_set():
    """After its scan the v1 Messages list is hydrated; nothing of deletions is touched."""
    store = fakes.Store()
    service = Service(store=store, accounts=[ACCOUNT], schedule=SCHEDULE, page_size=10)
    await service.turns.take(ACCOUNT, fakes.Client(fakes.Twilio([])), COMMS_MESSAGES)
    assert store.hydration.asked == [fakes.ACCOUNT]
    assert store.deletions.cleared == [] and store.pages.seen == set()


async def test_a_replica_is_not_ready_until_a_round_completed_here_nor_while_a_stream_failed():
    """Not ready while starting (no round done here, within the first heartbeat timeout), nor while
    a stream's last turn here failed, nor without its database."""
    store = fakes.Store()
    service = Service(store=store, accounts=[ACCOUNT], schedule=SCHEDULE)
    assert any("starting" in p for p in await service.ready())
    service._rounds = 1
    assert await service.ready() == []
    service.health[(fakes.ACCOUNT, LEGACY_MESSAGES)] = StreamHealth(last_error="HTTP 500", failed_at=time.monotonic())
    assert [p for p in await service.ready() if "its last scan failed" in p]
    service.health[(fakes.ACCOUNT, LEGACY_MESSAGES)] = StreamHealth(last_success=time.monotonic())
    assert await service.ready() == []
    store.reachable = False
    assert await service.ready() == ["the database is away"]
