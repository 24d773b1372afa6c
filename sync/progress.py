"""Progress of long work: a live line on stderr, only where a person watches it.

On a terminal with text logs the line redraws itself; anywhere else (a pipe, a file, cron,
JSON logs for a collector) nothing is written, and the logs' scan events tell the story."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

import anyio

from sync import logs
from sync.models import Counts


@dataclass
class StreamProgress:
    counts: Counts = Counts()  # this run's, page by page
    done: bool = False
    reached: datetime | None = None  # the lists come newest first: how far back the scan's head has got
    slices_done: int = 0  # time slices read to their end in this run
    running: int = 0  # time slices being read now


@dataclass
class Progress:
    streams: dict[str, StreamProgress] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def stream(self, name: str) -> StreamProgress:
        return self.streams.setdefault(name, StreamProgress())

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        parts = []
        for name, s in self.streams.items():
            where = " done" if s.done else (f" back to {s.reached:%Y-%m-%d %H:%M}" if s.reached else "")
            sliced = f", slices {s.slices_done} read, {s.running} in flight" if s.slices_done or s.running else ""
            c = s.counts
            parts.append(f"{name}: {c.seen:,} records, {c.pages} pages{sliced}, {c.seen / elapsed:,.0f}/s{where}")
        return f"[{elapsed:6.1f}s] " + " | ".join(parts)

    async def render(self, out: TextIO = sys.stderr, interval: float = 0.5) -> None:
        """Redraws the line until cancelled (the caller then calls finish); returns at once
        where nobody watches."""
        if not logs.watched(out):
            return
        while True:
            await anyio.sleep(interval)
            out.write("\r\033[K" + self.line())
            out.flush()

    def finish(self, out: TextIO = sys.stderr) -> None:
        if logs.watched(out):
            out.write("\r\033[K" + self.line() + "\n")
            out.flush()
