"""The server's administration, for sync/database.py and the tests: databases and roles, and
whether a database holds the archive. One short connection each, to the database the DSN names
(the maintenance database `postgres` for DDL), never the archive's pool: Postgres will not
create, copy or drop a database from a connection to it."""

from __future__ import annotations

import asyncpg

from sync.sql.edge import SCHEMA_PRESENT

# What a failed connection or statement here raises: database.py turns it into one line.
FAILURES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def admin(dsn: str, template: str, *names: str) -> None:
    """Run a DDL statement naming databases or roles. DDL takes no bind parameters, so the server
    quotes each name (format's %I, or %L for a literal) from bound values first."""
    connection = await asyncpg.connect(dsn)
    try:
        placeholders = ", ".join(f"${i}::text" for i in range(2, len(names) + 2))
        statement = await connection.fetchval(f"SELECT format($1, {placeholders})", template, *names)
        await connection.execute(statement)
    finally:
        await connection.close()


async def create_database(dsn: str, name: str, *, template: str | None = None, owner: str | None = None) -> None:
    """Create database `name` on dsn's server (a file copy of `template` if given).
    Postgres refuses to copy a template while anyone is connected to it."""
    statement, names = "CREATE DATABASE %I", [name]
    if template is not None:
        statement, names = statement + " TEMPLATE %I", [*names, template]
    if owner is not None:
        statement, names = statement + " OWNER %I", [*names, owner]
    await admin(dsn, statement, *names)


async def drop_database(dsn: str, name: str) -> None:
    """Drop database `name` on dsn's server, disconnecting whoever is still in it."""
    await admin(dsn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", name)


async def database_exists(dsn: str, name: str) -> bool:
    """Whether dsn's server has a database called `name`."""
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def holds_archive(dsn: str) -> bool:
    """Whether the database dsn names holds the archive's schema."""
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval(SCHEMA_PRESENT))
    finally:
        await conn.close()
