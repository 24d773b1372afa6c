"""The servers a benchmark run needs: the emulator in its own process, and Postgres with its databases.

Everything started here is stopped here, by its own process id, also on Ctrl-C, through
context managers; the databases are dropped (or go with the embedded server's files)."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import anyio
import asyncpg

from bench import BenchError
from sync import database


@dataclass(frozen=True)
class Emulator:
    """The emulator serving both APIs, and the credentials it accepts."""

    base_url: str
    pid: int
    account_sid: str
    auth_token: str

    def authorization(self) -> str:
        token = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode("ascii")
        return f"Basic {token}"


class EmulatorProcess:
    """`python -m sync emulator` in its own process, so its CPU is never the worker's.

    Started on entering; `ready()` waits until it serves, so the caller can start Postgres
    while the emulator generates its data set. `options` are more of its flags, e.g.
    {"legacy-days": 7, "legacy-order": "sent-created"}; `label` names its log, so that two
    emulators can run side by side."""

    def __init__(self, messages: int, seed: int, workdir: Path, *, label: str = "emulator",
                 options: dict[str, object] | None = None) -> None:
        self.messages = messages
        self.seed = seed
        self.options = options or {}
        self.log_path = workdir / f"{label}.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Self:
        with open(self.log_path, "wb") as sink:
            # Port 0: the emulator binds a free port and prints its URL, so no port can be taken under us.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sync", "emulator", "--port", "0", "--messages", str(self.messages),
                 "--seed", str(self.seed), *(f"--{k}={v}" for k, v in self.options.items())],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop(self.proc)

    def ready(self) -> Emulator:
        from sync import emulator as emu  # the default credentials the emulator accepts

        assert self.proc is not None
        # Generating the data set takes about 1 s per 20,000 messages on a slow core.
        base_url = _wait_serving(self.proc, self.log_path, timeout=60 + self.messages / 2000)
        running = Emulator(base_url, self.proc.pid, emu.DEFAULT_ACCOUNT_SID, emu.DEFAULT_AUTH_TOKEN)
        _wait_answering(running, self.proc, self.log_path)
        return running


def _wait_serving(proc: subprocess.Popen, log_path: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("Twilio emulator serving") and " at http" in line:
                return line.rsplit(" at ", 1)[1].strip()
        if proc.poll() is not None:
            raise BenchError(f"the emulator exited with status {proc.returncode}: {last_line(log_path)}")
        time.sleep(0.1)
    raise BenchError(f"the emulator did not start within {timeout:.0f} s")


def _wait_answering(running: Emulator, proc: subprocess.Popen, log_path: Path) -> None:
    """One authenticated page, so the first measured request does not meet a half-started server."""
    url = f"{running.base_url}/v1/Messages?pageSize=1"
    deadline = time.monotonic() + 10
    while True:
        try:
            status = get_status(url, running.authorization())
        except OSError as exc:
            status, problem = None, str(exc)
        if status == 200:
            return
        if proc.poll() is not None:
            raise BenchError(f"the emulator exited with status {proc.returncode}: {last_line(log_path)}")
        if time.monotonic() > deadline:
            raise BenchError(f"the emulator does not answer at {running.base_url} "
                             f"({'HTTP ' + str(status) if status else problem})")
        time.sleep(0.1)


def get_status(url: str, authorization: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": authorization})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def request_count(running: Emulator) -> int | None:
    """Requests the emulator has served, from its `/_emulator/faults` report; None when it has none.

    Older emulators have no such endpoint; then the caller counts pages in twilio.scans."""
    request = urllib.request.Request(f"{running.base_url}/_emulator/faults",
                                     headers={"Authorization": running.authorization()})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            body = json.loads(resp.read())
    except (OSError, ValueError):  # HTTPError is an OSError: a 404 means "no such endpoint"
        return None
    count = body.get("requests") if isinstance(body, dict) else None
    if isinstance(count, dict):  # a count per route is summed
        count = sum(v for v in count.values() if isinstance(v, int))
    return count if isinstance(count, int) else None


def fault_control(running: Emulator, command: dict | None = None) -> dict:
    """The emulator's fault-control report (`GET /_emulator/faults`: counts, peaks in flight, the
    profile), after applying `command` when one is given (a POST of the same path, e.g.
    {"reset": true, "profile": "latency-ms=500"}, see sync/emulator/faults.py `Faults.command`)."""
    data = None if command is None else json.dumps(command).encode()
    request = urllib.request.Request(f"{running.base_url}/_emulator/faults", data=data,
                                     headers={"Authorization": running.authorization(),
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise BenchError(f"the emulator refused {command or 'GET'} on its fault control: HTTP {exc.code} "
                         f"{exc.read()[:200].decode(errors='replace')}") from exc
    except (OSError, ValueError) as exc:
        raise BenchError(f"the emulator's fault control did not answer: {exc}") from exc
    if not isinstance(body, dict):
        raise BenchError(f"the emulator's fault control answered {body!r}")
    return body


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def last_line(path: Path) -> str:
    """A process's last words: its one-line error, or the end of a traceback."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


# ---- Postgres -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    dsn: str  # a superuser (or CREATEDB) login on the server
    pid: int | None  # the postmaster, when it runs here (for its CPU time)
    embedded: bool


@contextmanager
def postgres(workdir: Path) -> Iterator[Server]:
    """DATABASE_URL's server when set; otherwise a private embedded Postgres deleted afterwards."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield Server(dsn=url, pid=None, embedded=False)
        return
    # The unix socket lives in the data directory and socket paths are limited to ~100 bytes:
    # the caller gives a short temporary directory.
    server = database.start_embedded(workdir / "pgdata", cleanup_mode="delete")
    try:
        yield Server(dsn=server.get_uri(), pid=server.get_pid(), embedded=True)
    finally:
        server.cleanup()


class Databases:
    """A migrated template, and fresh copies of it (a file copy: no migration per phase)."""

    def __init__(self, server_dsn: str) -> None:
        self.server_dsn = server_dsn
        self.prefix = f"twilio_bench_{secrets.token_hex(4)}"  # never one of the user's databases
        self.created: list[str] = []

    async def prepare(self) -> None:
        from sync import migrate

        template = await self._create(f"{self.prefix}_template")
        await anyio.to_thread.run_sync(migrate.upgrade, template)

    async def fresh(self, label: str) -> str:
        return await self._create(f"{self.prefix}_{label}", template=f"{self.prefix}_template")

    async def empty(self, label: str) -> str:
        """A database with no schema: for another release to migrate with its own revisions."""
        return await self._create(f"{self.prefix}_{label}")

    async def server_version(self) -> str:
        conn = await self._admin()
        try:
            return await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()

    async def drop(self, dsn: str) -> None:
        """Drop a database made by `fresh` once its phase is done, to keep the disk footprint small."""
        name = database.database_of(dsn)
        await self._guarded(database.drop_database(self.server_dsn, name))
        self.created.remove(name)

    async def drop_all(self) -> None:
        for name in reversed(self.created):
            await self._guarded(database.drop_database(self.server_dsn, name))
        self.created.clear()

    async def _create(self, name: str, template: str | None = None) -> str:
        dsn = await self._guarded(database.create_database(self.server_dsn, name, template=template))
        self.created.append(name)
        return dsn

    async def _guarded(self, operation):
        try:
            return await operation
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise BenchError(f"Postgres: {type(exc).__name__}: {exc}") from exc

    async def _admin(self) -> asyncpg.Connection:
        try:
            return await asyncpg.connect(self.server_dsn, timeout=15)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise BenchError(f"cannot connect to Postgres: {type(exc).__name__}: {exc}") from exc


async def checkpoint(conn: asyncpg.Connection) -> None:
    """Start a measurement from a checkpoint: it does not pay for flushing what earlier phases
    wrote, and it meets its pages as a run hours after the last one would (the first change of
    a page after a checkpoint writes the whole page to WAL, and a rescan's row locks are changes)."""
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        pass  # DATABASE_URL without pg_checkpoint: the figures depend a little more on timing
