"""The job queue's tables as migration 0010 froze them are what the installed pgqueuer expects, and
an account is never queued twice however often it is offered."""

from __future__ import annotations

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
