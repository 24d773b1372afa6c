"""Progress lines on stderr, each stamped with the time since the benchmark started.

stdout is kept for the table, so `python -m bench > result.txt` captures only the result."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

_STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"bench [{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def step(what: str) -> Iterator[None]:
    """Announce a step, then say how long it took (or that it failed)."""
    say(f"{what} ...")
    started = time.monotonic()
    ok = False
    try:
        yield
        ok = True
    finally:
        took = time.monotonic() - started
        say(f"{what}: {'done' if ok else 'stopped'} in {took:.1f} s")
