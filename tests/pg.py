"""Test helpers for a real Postgres: start a private server, make and drop databases and roles.

Used by tests/conftest.py for the pg_server_dsn and empty_database_dsn fixtures. The setup
itself lives in sync/database.py (its statements in sync/sql/server.py), shared with the CLI
and the bench; this module names it the way the tests use it and adds what only tests need (roles, restarts)."""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from sync import database
from sync.sql import server

dsn_with_database = database.with_database
drop_database = database.drop_database


def start_server(tmp_path: Path | str):
    """Start an embedded Postgres in tmp_path, deleted on cleanup(); returns its PostgresServer.

    The unix socket is made inside the data directory, and socket paths are limited to about
    100 bytes: give a short directory (tempfile.mkdtemp(prefix="twa-")), not a deep pytest tmp_path.
    """
    return database.start_embedded(Path(tmp_path) / "pgdata", cleanup_mode="delete")


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


async def create_database(dsn: str, name: str, owner: str | None = None) -> str:
    """Create an empty database `name` (owned by `owner` if given) on dsn's server; returns its DSN."""
    return await database.create_database(dsn, name, owner=owner)


async def clone_database(dsn: str, name: str, template: str) -> str:
    """Create database `name` as a copy of `template` (a file copy, no migrations rerun); returns its DSN.

    Postgres refuses while anyone is connected to the template.
    """
    return await database.create_database(dsn, name, template=template)


async def create_login_role(dsn: str, name: str, password: str) -> None:
    """Create a plain login role: no superuser, may not create roles or databases (managed Postgres)."""
    await server.admin(dsn, "CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB PASSWORD %L", name, password)


async def drop_role(dsn: str, name: str) -> None:
    """Drop role `name` if it exists (drop the databases it owns first)."""
    await server.admin(dsn, "DROP ROLE IF EXISTS %I", name)


def restart_server(server) -> None:
    """Restart a server from start_server the way an operator's `pg_ctl restart -m fast` does:
    every connection is cut, the server is down for a moment, then accepts connections again
    at the same socket. Blocking: run it in a thread while the code under test goes on."""
    database.pg_ctl(server, "restart")


def stop_server(server) -> None:
    """Stop a server from start_server (`pg_ctl stop -m fast`); restart_server starts it again
    (pg_ctl restart starts a stopped server with the options it last ran with)."""
    database.pg_ctl(server, "stop")
