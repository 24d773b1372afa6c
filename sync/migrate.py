"""Brings a database's schema to a given revision: alembic driven from code, no alembic.ini.

The revisions ship inside the wheel as the package sync.migrations (pyproject maps the
repository's migrations/ folder onto it), so an installed service can migrate its own
database. Alembic's API is synchronous and its env.py runs its own event loop: call these
from a worker thread (anyio.to_thread.run_sync), never from a running event loop.

Failures the user can act on (server unreachable, refused, a revision this code does not
know) become errors.StoreError; the driver's error stays in the chain.
"""

from __future__ import annotations

import asyncio
import importlib.resources
from pathlib import Path

import asyncpg
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from sync import errors

_FAILURES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, sqlalchemy.exc.DBAPIError, CommandError)


def script_location() -> Path:
    """The folder holding env.py and versions/: the installed package, else the repository's."""
    try:
        location = Path(str(importlib.resources.files("sync.migrations")))
    except ModuleNotFoundError:
        # Running from a checkout that is not pip-installed: package-dir mapping only exists
        # in an install, so sync.migrations is not importable, but migrations/ is beside sync/.
        location = Path(__file__).resolve().parent.parent / "migrations"
    if not (location / "env.py").is_file():
        raise errors.StoreError(f"migration scripts not found in {location}")
    return location


def _config(dsn: str | None) -> Config:
    config = Config()
    # ConfigParser would read a % in the path as interpolation.
    config.set_main_option("script_location", str(script_location()).replace("%", "%%"))
    if dsn is not None:
        config.attributes["dsn"] = dsn
    return config


def _first_line(exc: BaseException) -> str:
    # SQLAlchemy appends the statement and a link to its docs; the user needs the cause.
    cause = getattr(exc, "orig", None) or exc
    if isinstance(cause, OSError):
        # A bare "[Errno 2] No such file or directory" does not say that it was the server's socket.
        return f"cannot connect to the server: {cause.strerror or cause}"
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def upgrade(dsn: str, revision: str = "head") -> None:
    """Apply revisions up to `revision` (default: the newest) in one transaction."""
    try:
        command.upgrade(_config(dsn), revision)
    except _FAILURES as exc:
        raise errors.StoreError(f"cannot migrate the database to {revision}: {_first_line(exc)}") from exc


def downgrade(dsn: str, revision: str) -> None:
    """Undo revisions down to `revision` ("base" removes everything the archive created)."""
    try:
        command.downgrade(_config(dsn), revision)
    except _FAILURES as exc:
        raise errors.StoreError(f"cannot downgrade the database to {revision}: {_first_line(exc)}") from exc


def head() -> str:
    """The newest revision this code ships; a database at another revision needs `upgrade`."""
    heads = ScriptDirectory.from_config(_config(None)).get_heads()
    if len(heads) != 1:
        raise errors.StoreError(f"migration history must have one head, found {sorted(heads)}")
    return heads[0]


def current(dsn: str) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    try:
        return asyncio.run(_current(dsn))
    except _FAILURES as exc:
        raise errors.StoreError(f"cannot read the database's schema revision: {_first_line(exc)}") from exc


async def _current(dsn: str) -> str | None:
    # Same connection path as env.py, so a DSN that migrates is also one that can be checked.
    engine = create_async_engine(
        "postgresql+asyncpg://", async_creator=lambda: asyncpg.connect(dsn), poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync_connection: MigrationContext.configure(sync_connection).get_current_revision()
            )
    finally:
        await engine.dispose()
