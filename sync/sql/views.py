"""The archive's materialized views (twilio.daily_account_overview): their refresh."""

from __future__ import annotations

from sync import errors
from sync.sql.edge import SCHEMA, Postgres

# A refresh recomputes the whole view: minutes on a big archive, never the default statement timeout.
REFRESH_TIMEOUT = 3600.0


class Views:
    def __init__(self, db: Postgres) -> None:
        self._db = db

    async def refresh(self, view: str) -> None:
        """REFRESH a materialized view of schema twilio: CONCURRENTLY once it holds data (readers
        keep reading the previous rows), plainly if it never did. Retried while the database is away."""
        if not view.isidentifier():
            raise ValueError(view)

        async def once() -> None:
            async with self._db.connection() as conn:
                populated = await conn.fetchval(
                    "SELECT ispopulated FROM pg_matviews WHERE schemaname = $1 AND matviewname = $2", SCHEMA, view)
                if populated is None:
                    raise errors.StoreError(f"{SCHEMA}.{view} is not a materialized view: run `python -m sync migrate`")
                how = "CONCURRENTLY " if populated else ""
                # The name is checked above and is ours (analytics.py), never user input; DDL takes no parameters.
                await conn.execute(f'REFRESH MATERIALIZED VIEW {how}{SCHEMA}."{view}"', timeout=REFRESH_TIMEOUT)

        await self._db.retrying(once, f"refresh {SCHEMA}.{view}")
