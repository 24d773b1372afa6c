"""Reading the archive as a whole: is the schema there, what each stream holds, how fresh."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sync import errors
from sync.models import STREAMS, Scan
from sync.sources import BY_STREAM
from sync.sql.scans import Scans
from sync.sql.edge import SCHEMA, SCHEMA_PRESENT, Postgres


class Status:
    def __init__(self, db: Postgres, scans: Scans) -> None:
        self._db = db
        self._scans = scans

    async def check_schema(self) -> None:
        exists = await self._db.fetchval(SCHEMA_PRESENT)
        if not exists:
            raise errors.StoreError("the archive schema is missing: run `python -m sync migrate` first")

    async def streams(self) -> list[dict[str, Any]]:
        """Per (account, stream): last complete scan, in-flight checkpoint, rows, newest record."""
        latest = await self._scans.latest()
        out = []
        for stream in STREAMS:
            created = BY_STREAM[stream].created_column
            row = await self._db.fetchrow(f"SELECT count(*), max({created}) FROM twilio.{stream}")
            entry: dict[str, Any] = {"stream": stream, "rows": row[0], "newest": row[1], "complete": None, "running": None}
            for scan in latest:
                if scan["stream"] == stream:
                    entry["running" if scan["status"] == "running" else "complete"] = Scan.from_row(scan)
            out.append(entry)
        return out

    async def accounts(self) -> list[Any]:
        """Per account: what its listing said (status, name), when every stream had last completed
        a scan (the oldest of each stream's newest), its rows over the three lists, and the replica
        that took its last round. One statement; `status` runs it once."""
        return await self._db.fetch(
            "WITH counted AS ("
            " SELECT account_sid, count(*) AS n FROM twilio.legacy_messages GROUP BY 1"
            " UNION ALL SELECT account_sid, count(*) FROM twilio.comms_messages GROUP BY 1"
            " UNION ALL SELECT account_sid, count(*) FROM twilio.comms_operations GROUP BY 1), "
            "rows_ AS (SELECT account_sid, sum(n)::bigint AS n FROM counted GROUP BY 1), "
            "per_stream AS (SELECT account_sid, stream, max(finished_at) AS done FROM twilio.scans "
            " WHERE status = 'complete' GROUP BY 1, 2), "
            "done AS (SELECT account_sid, CASE WHEN count(*) = $1 THEN min(done) END AS done FROM per_stream GROUP BY 1), "
            "ids AS (SELECT account_sid FROM rows_ UNION SELECT account_sid FROM done "
            " UNION SELECT account_sid FROM twilio.accounts) "
            "SELECT ids.account_sid, a.status, a.friendly_name, d.done, coalesce(r.n, 0) AS rows, a.last_worked_by, "
            "a.last_worked_at FROM ids LEFT JOIN twilio.accounts a USING (account_sid) "
            "LEFT JOIN rows_ r USING (account_sid) LEFT JOIN done d USING (account_sid) ORDER BY 1",
            len(STREAMS),
        )

    async def newest_records(self, accounts: list[str]) -> list[tuple[str, str, datetime | None]]:
        """(account, stream, newest creation time) of each account's streams. One account at a
        time: the creation-time index is read backwards until the account's newest row, where a
        GROUP BY would read the whole table."""
        out = []
        for stream in STREAMS:
            created = BY_STREAM[stream].created_column
            for account_sid in accounts:
                newest = await self._db.fetchval(f"SELECT max({created}) FROM {SCHEMA}.{stream} WHERE account_sid = $1",
                                                 account_sid)
                out.append((account_sid, stream, newest))
        return out

    async def count(self, table: str) -> int:
        if table not in STREAMS:
            raise ValueError(table)
        return await self._db.fetchval(f"SELECT count(*) FROM twilio.{table}")
