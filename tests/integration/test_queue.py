"""The job queue's tables as migration 0010 froze them are what the installed pgqueuer expects, and
an account is never queued twice however often it is offered."""

from __future__ import annotations

from datetime import timedelta

from pgqueuer import QueueManager

from sync import queue


async def test_the_migrated_queue_is_what_the_installed_pgqueuer_expects(db_dsn):
    """pgqueuer finds nothing to change in the schema the migration made, and its own check passes:
    a pgqueuer that wants another schema fails here, not in production."""
    async with queue.Queue.open(db_dsn) as q:
        plan = await q.queries.plan_upgrade()
        assert plan.statements == (), plan.statements
        await QueueManager(q.queries).verify_structure()


async def test_an_account_offered_twice_is_one_job(db_dsn):
    """The dedupe key (the account's SID) keeps one job per account, offered by any number of replicas."""
    async with queue.Queue.open(db_dsn) as q:
        assert await q.offer(["AC1", "AC2"]) == 2
        assert await q.offer(["AC2", "AC3"]) == 1
        rows = await q.queries.driver.fetch("SELECT dedupe_key FROM twilio_queue.pgqueuer ORDER BY 1")
    assert [r["dedupe_key"] for r in rows] == ["AC1", "AC2", "AC3"]


async def test_prune_forgets_the_queue_log_older_than_asked_and_keeps_the_rest(db_dsn):
    """The queue's log of job events (a row per state change, never deleted by pgqueuer) loses
    its rows older than the age asked, and keeps the newer ones."""
    async with queue.Queue.open(db_dsn) as q:
        await q.offer(["AC1"])
        conn = q.queries.driver
        await conn.execute("INSERT INTO twilio_queue.pgqueuer_log (job_id, status, priority, entrypoint, created) "
                           "SELECT 1, 'queued', 0, 'scan_round', now() - make_interval(hours => h, mins => 30) "
                           "FROM generate_series(0, 47) AS h")
        before = await conn.fetch("SELECT count(*) AS n FROM twilio_queue.pgqueuer_log")
        assert await q.prune(timedelta(days=1)) == 24  # 24.5 to 47.5 hours old
        after = await conn.fetch("SELECT count(*) AS n, max(now() - created) AS oldest FROM twilio_queue.pgqueuer_log")
    assert after[0]["n"] == before[0]["n"] - 24
    assert after[0]["oldest"] < timedelta(days=1)
