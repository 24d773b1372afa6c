"""Alembic environment: runs the hand-written revisions in versions/ against one database.

Run by `alembic` from the repository (alembic.ini) and by sync.migrate from an installed
wheel (Config built in code). The DSN is a plain libpq-style URL, e.g.
postgresql://user:pass@/db?host=/run/postgresql, taken from config.attributes["dsn"] or
else DATABASE_URL. It is handed to asyncpg as is: translating it into a SQLAlchemy URL
would lose libpq spellings that SQLAlchemy does not know (socket dirs in ?host=, sslmode,
passfile, ...).
"""

import asyncio
import logging
import os
from logging.config import fileConfig

import asyncpg
from alembic import context
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

config = context.config

# Only the alembic CLI has an ini file; a caller of sync.migrate keeps its own logging setup.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

# Under "alembic" so the CLI's logging section shows it without extra configuration.
logger = logging.getLogger("alembic.env")

# Two replicas starting at once must not both try to create the schema: the second waits
# here, then finds the revision already applied. Any constant works; it only has to be the
# same for every process migrating this database.
MIGRATION_LOCK_KEY = 7_348_215_901_126_400_001


def _dsn() -> str:
    dsn = config.attributes.get("dsn") or os.environ.get("DATABASE_URL")
    if not dsn:
        # CommandError is what the alembic CLI prints as one line instead of a traceback.
        raise CommandError("no database to migrate: set DATABASE_URL (e.g. postgresql://user:pass@host/db)")
    return dsn


def _relay_server_message(_connection: asyncpg.Connection, message: asyncpg.PostgresLogMessage) -> None:
    # asyncpg drops NOTICEs unless someone listens, and the revisions use them to tell the
    # operator what an administrator must do (e.g. create the reader role by hand).
    severity = getattr(message, "severity", "NOTICE")
    level = logging.INFO if severity in ("DEBUG", "LOG", "INFO") else logging.WARNING
    logger.log(level, "%s: %s", severity, message.message)


def _take_lock() -> None:
    context.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")


def run_migrations_offline() -> None:
    """Print the SQL (alembic upgrade --sql) for a DBA to review or run; needs no database."""
    context.configure(
        dialect_name="postgresql",
        literal_binds=True,
        # The default (pyformat) would print every % of the DO blocks as %%.
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        _take_lock()
        context.run_migrations()


def _run_in_transaction(connection: Connection) -> None:
    # One transaction for the whole run: Postgres DDL is transactional, so a failure halfway
    # leaves the database exactly at the revision it started from.
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=False)
    with context.begin_transaction():
        _take_lock()
        context.run_migrations()


async def run_migrations_online() -> None:
    dsn = _dsn()

    async def connect() -> asyncpg.Connection:
        connection = await asyncpg.connect(dsn)
        connection.add_log_listener(_relay_server_message)
        return connection

    # NullPool: a migration is one connection used once; nothing should outlive the run.
    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_in_transaction)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
