"""The thin Postgres edge: the pool, the one retry loop, and which driver errors are worth
another try. Every statement of the archive goes through here, and only here is the pool
touched: the concerns of sync/sql/ ask the edge for a statement, a transaction or a connection.
Driver errors leave it as our own (errors.StoreError, errors.StoreUnavailableError), with
`raise ... from`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg

from sync import errors, logs
from sync.observe import NOBODY, Observer
from sync.retry import Backoff, retrying

log = logs.get("sync.store")  # the name it had before the split: log filters name it
T = TypeVar("T")

SCHEMA = "twilio"
# Whether a database holds the archive (a migrated schema): the store's check and the server's.
SCHEMA_PRESENT = "SELECT to_regclass('twilio.scans') IS NOT NULL"
# A Postgres restart or failover takes seconds to a minute or two; wait that out, then say so.
RECONNECT = Backoff(attempts=None, base=0.2, cap=10.0, budget=180.0)

# Every row we write can be fetched from Twilio again, and a page commits with its own
# checkpoint: if Postgres crashes before flushing the last commits, they vanish together and the
# scan refetches those pages. So no commit needs to wait for its WAL to reach the disk.
SERVER_SETTINGS = {"synchronous_commit": "off"}

# A page's keys go to Postgres as one text split by this character (see `key_list`).
KEY_SEPARATOR = "\x1f"  # ASCII's unit separator: no Twilio SID or id holds it


def key_list(keys: list[str]) -> tuple[str, str | list[str]]:
    """(the SQL of a text[] of these keys as parameter $1, the argument): one text that Postgres
    splits, not a text[], whose encoding checks each element against two abstract base classes
    in asyncpg (a digest lookup of 1,000 keys cost the client 0.6 to 0.76 ms as an array, 0.24 to
    0.28 ms as one text). A key holding the separator sends the array, so no key is ever split; so
    does a lone empty key, which string_to_array would read as no key at all."""
    joined = KEY_SEPARATOR.join(keys)
    if joined and joined.count(KEY_SEPARATOR) == len(keys) - 1:
        return "string_to_array($1::text, E'\\x1f')", joined
    return "$1::text[]", keys


# Errors of a database that is away for a while, not of what we asked: worth another try.
TRANSIENT = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08: the connection broke
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # class 40: serialization failure, deadlock
    asyncpg.InterfaceError,  # a pooled connection the server closed
    # Releasing a connection that broke mid-statement fails in asyncpg's protocol state
    # ("cannot switch to state ..."); the pool has terminated it, a new one will be made.
    asyncpg.exceptions.InternalClientError,
)
# Errors about one value of one row: the row is kept aside and the page goes on.
ROW_REFUSALS = (
    asyncpg.DataError,  # class 22: a value the column type cannot hold
    asyncpg.IntegrityConstraintViolationError,  # class 23
    asyncpg.exceptions.ProgramLimitExceededError,  # class 54: e.g. too large for an index entry
)


def describe(exc: BaseException) -> str:
    """One line about a driver error, without the DSN (it may hold a password)."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Postgres:
    """A pool, and the statements that run on it, each retried while the database is away."""

    def __init__(self, pool: asyncpg.Pool, *, retry: Backoff = RECONNECT, observer: Observer = NOBODY) -> None:
        self._pool = pool
        self._retry = retry
        self._observer = observer  # told the cause of each retry

    @classmethod
    async def connect(cls, dsn: str, *, max_size: int = 8, observer: Observer = NOBODY) -> Postgres:
        try:
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, timeout=15, command_timeout=300,
                                             server_settings=SERVER_SETTINGS)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            raise errors.StoreError(f"cannot connect to the database: {describe(exc)}") from exc
        return cls(pool, observer=observer)

    async def close(self) -> None:
        await self._pool.close()

    async def retrying(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """Run `operation` until it succeeds, retrying while the database is away (restarting,
        failing over, out of connections); any other driver error becomes a StoreError.

        A transaction retried whole is safe: it either committed or did not, and each
        transaction here checks what an earlier, lost answer may have committed."""

        def told(exc: BaseException, attempt: int) -> None:
            self._observer.retry("postgres", type(exc.__cause__ or exc).__name__)

        return await retrying(lambda: self.once(operation, what), self._retry, errors.StoreUnavailableError,
                              log=log, what=what, on_retry=told)

    async def once(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        """Run `operation` one time, its driver errors turned into ours: StoreUnavailableError
        while the database is away, StoreError for anything else it refused."""
        try:
            return await operation()
        except TRANSIENT as exc:
            raise errors.StoreUnavailableError(f"cannot {what}: {describe(exc)}") from exc
        except asyncpg.PostgresError as exc:
            raise errors.StoreError(f"cannot {what}: {describe(exc)}") from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection in a transaction, for the block (run it inside `retrying`)."""
        async with self._pool.acquire() as conn, conn.transaction():
            yield conn

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self.retrying(lambda: self._pool.fetch(query, *args), "read from the database")

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self.retrying(lambda: self._pool.fetchrow(query, *args), "read from the database")

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.retrying(lambda: self._pool.fetchval(query, *args), "read from the database")

    async def execute(self, query: str, *args: Any, retry: bool = True, what: str = "write to the database") -> str:
        """`retry=False`: one try, for a caller that must not wait on the database; `what` names the
        write in errors and logs."""
        run = self.retrying if retry else self.once
        return await run(lambda: self._pool.execute(query, *args), what)

    async def ping(self) -> None:
        """Fails (StoreUnavailableError) unless the database answers now: no retrying."""
        try:
            await self._pool.fetchval("SELECT 1", timeout=5)
        except (*TRANSIENT, asyncpg.PostgresError) as exc:
            raise errors.StoreUnavailableError(f"the database does not answer: {describe(exc)}") from exc
