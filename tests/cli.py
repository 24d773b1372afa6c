"""Running the CLI as a user does: a real process with its configuration in the environment."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.abc

from sync import emulator

T = TypeVar("T")


def cli_env(base_url: str | None, dsn: str | None, **extra: str) -> dict[str, str]:
    """This process's environment without our settings, then the emulator's credentials and URLs
    (when `base_url`), DATABASE_URL (when `dsn`), then `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DATABASE_URL", "SSL_CERT"))}
    if dsn:
        env["DATABASE_URL"] = dsn
    if base_url:
        env.update(
            TWILIO_ACCOUNT_SID=emulator.DEFAULT_ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=emulator.DEFAULT_AUTH_TOKEN,
            TWILIO_API_BASE_URL=base_url,
            TWILIO_COMMS_BASE_URL=base_url,
        )
    env.update(extra)
    return env


@contextlib.contextmanager
def interruptible():
    """A process started inside takes SIGINT as it takes a terminal's Ctrl-C. A shell's background
    job ignores SIGINT, and a child inherits that (a Python handler, unlike an ignore, does not
    survive exec): Python then installs no KeyboardInterrupt at all, and the child would sleep
    through the signal a Ctrl-C test sends it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def sync_cli(*args: str, env: dict[str, str]):
    # Async on purpose: the emulator serves from the test's event loop while the CLI runs.
    return await anyio.run_process([sys.executable, "-m", "sync", *args], env=env, check=False)


@contextlib.asynccontextmanager
async def held_after(emu: emulator.Emulator, answered: int) -> AsyncIterator[None]:
    """Inside the block the emulator answers `answered` more API requests, then holds the rest
    unanswered; the gate opens on the way out. A process signalled while one of its requests is
    held (see `until_held`) surely had work left, however loaded the machine: it cannot race
    the signal to the end of its work."""
    emu.faults.hold_after(answered)
    try:
        yield
    finally:
        emu.faults.release()


async def until_held(emu: emulator.Emulator, proc: anyio.abc.Process) -> None:
    """Wait until the emulator's gate holds a request, the running `proc` being the only client."""
    while not emu.faults.held:
        assert proc.returncode is None, "the process ended before the gate held one of its requests"
        await anyio.sleep(0.01)


async def answer_until(emu: emulator.Emulator, proc: anyio.abc.Process,
                       look: Callable[[], Awaitable[T]], enough: Callable[[T], bool]) -> None:
    """Inside `held_after`: wait until `enough(await look())`. Whenever the gate holds a request
    and what `look` sees has not moved since the last look, the gate lets one more through.
    Which work a given count of answers completes depends on the order requests are admitted
    in; this waits for the state itself, one answer at a time, however the machine schedules."""
    seen: object = object()
    while not enough(state := await look()):
        assert proc.returncode is None, "the process ended before it reached the state waited for"
        if emu.faults.held:
            if state == seen:
                emu.faults.hold_after(1)
            seen = state
        await anyio.sleep(0.05)
