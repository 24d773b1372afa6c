"""Running `python -m sync run` as an operator does: a real process, JSON logs, a real HTTP port."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import anyio
import anyio.abc
import asyncpg

# Fast enough for tests: a recent scan every half second, a full one every 3 s, a dead replica's
# accounts taken over 3 s after it died (the queue's heartbeat timeout).
FAST = ("--interval", "0.5", "--full-interval", "3", "--lookback", "900", "--heartbeat-seconds", "3",
        "--page-size", "100")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """One `run` process; its stderr (JSON lines) goes to a file the test can read at any time."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.env = env
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkstemp(prefix="twa-run-", suffix=".log")[1])
        self.proc: anyio.abc.Process | None = None

    async def start(self) -> Service:
        with self.log_path.open("ab") as log:
            self.proc = await anyio.open_process(
                [sys.executable, "-m", "sync", "run", "--log-format", "json", "--http-port", str(self.port), *self.args],
                env=self.env, stdout=log, stderr=log)
        return self

    def events(self, name: str | None = None) -> list[dict]:
        out = []
        for line in self.log_path.read_text().splitlines():
            entry = json.loads(line)
            if name is None or entry.get("event") == name:
                out.append(entry)
        return out

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as resp:
            return resp.status, await resp.text()

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signum)

    async def stop(self) -> int:
        """SIGTERM, then the exit code (SIGKILL after 20 s, which fails the test's exit check)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.signal(signal.SIGTERM)
            with anyio.move_on_after(20):
                await self.proc.wait()
            if self.proc.returncode is None:
                self.signal(signal.SIGKILL)
                await self.proc.wait()
        return self.proc.returncode

    async def kill(self) -> None:
        assert self.proc is not None
        self.signal(signal.SIGKILL)
        await self.proc.wait()

    async def __aenter__(self) -> Service:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        self.log_path.unlink(missing_ok=True)


async def eventually(check: Callable[[], Awaitable[object]], timeout: float = 30.0, what: str = "") -> float:
    """Poll `check` until it returns something truthy; the seconds it took."""
    started = time.monotonic()
    while True:
        if await check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what or check}")
        await anyio.sleep(0.1)


async def query(dsn: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def complete_scans(dsn: str, kind: str) -> set[str]:
    """The streams with a complete scan of `kind`."""
    rows = await query(dsn, "SELECT DISTINCT stream FROM twilio.scans WHERE kind = $1 AND status = 'complete'", kind)
    return {r[0] for r in rows}
