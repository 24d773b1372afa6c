"""Progress of long work on stderr: a live line on a terminal, a line every few seconds otherwise."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

import anyio


@dataclass
class StreamProgress:
    pages: int = 0
    seen: int = 0
    inserted: int = 0
    updated: int = 0
    problems: int = 0
    done: bool = False
    reached: datetime | None = None  # the lists come newest first: how far back the scan has got


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
            parts.append(f"{name}: {s.seen:,} records, {s.pages} pages, {s.seen / elapsed:,.0f}/s{where}")
        return f"[{elapsed:6.1f}s] " + " | ".join(parts)

    async def render(self, out: TextIO = sys.stderr, interval: float | None = None) -> None:
        """Runs until cancelled; the caller prints the final line."""
        live = out.isatty()
        interval = interval or (0.5 if live else 10.0)
        while True:
            await anyio.sleep(interval)
            if live:
                out.write("\r\033[K" + self.line())
            else:
                out.write(self.line() + "\n")
            out.flush()

    def finish(self, out: TextIO = sys.stderr) -> None:
        if out.isatty():
            out.write("\r\033[K")
        out.write(self.line() + "\n")
        out.flush()
