"""The media phase (issue 21): what reading media lists adds to a backfill.

With `--mms-share F` the bench starts another emulator whose legacy messages carry media in
that share (1 to 10 items each) and runs the real `python -m sync backfill --source legacy`
over the bench's window twice, each into a fresh database: once with `--no-media` (the list
alone), once as users run it (the list, then one media-list request per message with media).
It reports the requests of each (counted by the emulator), the media requests per message with
media (1.0 when every list fits one page, as it must), the items archived, and records/s over
each whole process (the media lists are read after the scans, so the scans' own span would
leave them out). The other phases run with `--no-media`, so their figures stay comparable with
the releases before media."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench import BenchError, procs, runs
from bench.console import say


@dataclass
class Phase:
    share: float
    messages: int  # legacy messages archived
    with_media: int  # of which num_media above 0
    items: int  # media items archived
    without: runs.Run  # backfill --no-media
    media: runs.Run  # backfill, media included

    @property
    def media_requests(self) -> int:
        return self.media.requests - self.without.requests

    @property
    def requests_per_message_with_media(self) -> float:
        return self.media_requests / self.with_media if self.with_media else 0.0

    @staticmethod
    def rate(run: runs.Run) -> float:
        """Records per second of the whole process, media lists included."""
        return run.records / run.exit.seconds if run.exit.seconds > 0 else 0.0

    @property
    def added_seconds_share(self) -> float:
        return self.media.exit.seconds / self.without.exit.seconds - 1 if self.without.exit.seconds else 0.0


async def measure(share: float, messages: int, seed: int, since: str, until: str, databases, workdir: Path,
                  timed) -> Phase:
    with timed(f"media ({share:.0%} MMS)"):
        with procs.EmulatorProcess(messages, seed, workdir, label="emulator-media",
                                   options={"mms-share": share}) as process:
            running = process.ready()
            runner = runs.Runner(running, since, until, workdir, ("--source", "legacy"))
            without_dsn, media_dsn = await databases.fresh("media_off"), await databases.fresh("media_on")
            without = await runner.with_options("--no-media").run(without_dsn, "media-off")
            media = await runner.run(media_dsn, "media-on")
            conn = await asyncpg.connect(media_dsn)
            try:
                archived = await conn.fetchval("SELECT count(*) FROM twilio.legacy_messages")
                with_media = await conn.fetchval("SELECT count(*) FROM twilio.legacy_messages WHERE num_media > 0")
                items = await conn.fetchval("SELECT count(*) FROM twilio.legacy_media")
                owed = await conn.fetchval("SELECT count(*) FROM twilio.legacy_messages AS m WHERE m.num_media > 0 "
                                           "AND NOT EXISTS (SELECT 1 FROM twilio.legacy_media_lists AS l "
                                           "WHERE l.message_sid = m.sid)")
            finally:
                await conn.close()
            await databases.drop(without_dsn)
            await databases.drop(media_dsn)
    if owed:
        raise BenchError(f"media: {owed:,} messages with media were left without their media list")
    phase = Phase(share, archived, with_media, items, without, media)
    say(f"media: {phase.media_requests:,} media requests for {with_media:,} messages with media "
        f"({phase.requests_per_message_with_media:.2f} each), {items:,} items; "
        f"{Phase.rate(without):,.0f} -> {Phase.rate(media):,.0f} records/s")
    return phase


def lines(p: Phase) -> list[str]:
    return [
        f"media     legacy list only, {p.share:.0%} of messages with media (1 to 10 items each), whole process",
        f"          {'':<28} {'requests':>9} {'seconds':>8} {'records/s':>10}",
        f"          {'backfill --no-media':<28} {p.without.requests:>9,} {p.without.exit.seconds:>8.1f} "
        f"{Phase.rate(p.without):>10,.0f}",
        f"          {'backfill (media read)':<28} {p.media.requests:>9,} {p.media.exit.seconds:>8.1f} "
        f"{Phase.rate(p.media):>10,.0f}",
        f"          {p.messages:,} messages, {p.with_media:,} with media: {p.media_requests:,} media requests "
        f"({p.requests_per_message_with_media:.2f} per message with media), {p.items:,} items; "
        f"time +{p.added_seconds_share:.0%}",
    ]


def json(p: Phase) -> dict:
    return {
        "mms_share": p.share, "messages": p.messages, "messages_with_media": p.with_media, "items": p.items,
        "requests_without_media": p.without.requests, "requests_with_media": p.media.requests,
        "media_requests": p.media_requests,
        "media_requests_per_message_with_media": round(p.requests_per_message_with_media, 3),
        "seconds_without_media": round(p.without.exit.seconds, 3), "seconds_with_media": round(p.media.exit.seconds, 3),
        "records_per_second_without_media": round(Phase.rate(p.without)),
        "records_per_second_with_media": round(Phase.rate(p.media)),
    }
