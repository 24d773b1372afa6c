"""twilio.message_status_history since 0011, a view whose first rows are derived from the
message rows: analysts see exactly the rows the 0004 table held, across the migration both ways,
and for messages archived and changed afterwards.

The messages are written by plain SQL, one statement a transaction as the archiver's pages are,
so each observation has its own now(); the triggers under test are the database's own.
"""

from __future__ import annotations

import asyncio

import asyncpg

from sync import migrate

HISTORY = ("SELECT id, source, message_id, account_sid, status, previous_status, changed_at, observed_at "
           "FROM twilio.message_status_history ORDER BY id")
DELIVERED = "SELECT source, id, delivered_at, seconds_to_delivered FROM twilio.message_facts ORDER BY source, id"
ACCOUNT = "AC00000000000000000000000000000001"


async def _upgrade(dsn: str, revision: str = "head") -> None:
    await asyncio.to_thread(migrate.upgrade, dsn, revision)


async def _downgrade(dsn: str, revision: str) -> None:
    await asyncio.to_thread(migrate.downgrade, dsn, revision)


async def _run(dsn: str, *statements: str) -> None:
    """Each statement in a transaction of its own, as pages are."""
    connection = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _fetch(dsn: str, query: str) -> list[tuple]:
    connection = await asyncpg.connect(dsn)
    try:
        return [tuple(row) for row in await connection.fetch(query)]
    finally:
        await connection.close()


def _legacy(sid: str, status: str | None, updated: str) -> str:
    value = "NULL" if status is None else f"'{status}'"
    return (f"INSERT INTO twilio.legacy_messages (sid, account_sid, status, date_created, date_updated, raw) "
            f"VALUES ('{sid}', '{ACCOUNT}', {value}, '2026-11-01T10:00:00Z', '{updated}', '{{}}')")


def _comms(id_: str, status: str, updated: str) -> str:
    return (f"INSERT INTO twilio.comms_messages (id, account_sid, status, created_at, updated_at, raw) "
            f"VALUES ('{id_}', '{ACCOUNT}', '{status}', '2026-11-01T10:00:00Z', '{updated}', '{{}}')")


def _set(table: str, key: str, id_: str, **values: str | None) -> str:
    assignments = ", ".join(f"{c} = {'NULL' if v is None else repr(v)}" for c, v in values.items())
    return f"UPDATE twilio.{table} SET {assignments} WHERE {key} = '{id_}'"


def _legacy_set(sid: str, **values: str | None) -> str:
    return _set("legacy_messages", "sid", sid, **values)


def _comms_set(id_: str, **values: str | None) -> str:
    return _set("comms_messages", "id", id_, **values)


async def test_analysts_see_the_same_history_across_0011_both_ways(empty_database_dsn):
    """Mixed histories written under 0004's triggers: the view shows exactly the table's rows
    (ids, values, order) after 0011, after a downgrade to 0010 and after upgrading again, and
    message_facts' time to delivered stays the same; the upgrade rewrites no row: every row of the
    table stays, and the messages it archived derive none."""
    dsn = empty_database_dsn
    await _upgrade(dsn, "0003")
    await _run(dsn, _legacy("SMbefore0004", "delivered", "2026-11-01T10:00:05Z"))  # no first row at all
    await _upgrade(dsn, "0010")
    await _run(
        dsn,
        _legacy("SMnever", "delivered", "2026-11-01T10:00:03Z"),
        _legacy("SMstatus", "queued", "2026-11-01T10:00:00Z"),
        _legacy_set("SMstatus", status="sent", date_updated="2026-11-01T10:00:01Z"),
        _legacy_set("SMstatus", status="delivered", date_updated="2026-11-01T10:00:09Z"),
        _legacy("SMdate", "sent", "2026-11-01T10:00:00Z"),
        _legacy_set("SMdate", date_updated="2026-11-01T10:00:30Z"),
        _legacy("SMnull", None, "2026-11-01T10:00:00Z"),
        _legacy("SMnullthen", None, "2026-11-01T10:00:00Z"),
        _legacy_set("SMnullthen", status="delivered", date_updated="2026-11-01T10:00:04Z"),
        _legacy("SMcase", "sent", "2026-11-01T10:00:00Z"),
        _legacy_set("SMcase", status="SENT"),  # the same status to analysts: no change row
        _comms("comms_message_inbound", "INBOUND", "2026-11-01T10:00:00Z"),
        _comms("comms_message_changed", "SENT", "2026-11-01T10:00:00Z"),
        _comms_set("comms_message_changed", status="DELIVERED", updated_at="2026-11-01T10:00:12Z"),
    )
    before = await _fetch(dsn, HISTORY)
    delivered = await _fetch(dsn, DELIVERED)
    assert len(before) == 10  # the mix above, as 0004 wrote it

    await _upgrade(dsn)
    assert await _fetch(dsn, HISTORY) == before
    assert await _fetch(dsn, DELIVERED) == delivered
    kept = await _fetch(dsn, HISTORY.replace("message_status_history", "message_status_changes"))
    assert kept == before
    assert await _fetch(dsn, "SELECT count(*) FROM twilio.legacy_messages WHERE first_observation_id IS NOT NULL") == [(0,)]

    await _downgrade(dsn, "0010")
    assert await _fetch(dsn, HISTORY) == before
    assert await _fetch(dsn, DELIVERED) == delivered
    await _upgrade(dsn)
    assert await _fetch(dsn, HISTORY) == before
    assert await _fetch(dsn, DELIVERED) == delivered


async def _changed_twice_then_dated(dsn: str) -> list[tuple]:
    """A message inserted, its status changed twice, then its date_updated alone; its history as
    (status, previous_status, changed_at) and the ids and observation times that go with it."""
    await _run(
        dsn,
        _legacy("SMlife", "queued", "2026-11-01T10:00:00Z"),
        _legacy_set("SMlife", status="sent", date_updated="2026-11-01T10:00:01Z"),
        _legacy_set("SMlife", status="delivered", date_updated="2026-11-01T10:00:08Z"),
        _legacy_set("SMlife", date_updated="2026-11-01T10:05:00Z"),
        _legacy_set("SMlife", deleted_at="2026-11-02T00:00:00Z"),  # shows in no history row
    )
    return await _fetch(dsn, HISTORY)


async def test_a_changed_message_shows_the_rows_the_0004_table_held(empty_database_dsn, pg_server_dsn):
    """The same life of a message at 0010 (0004's triggers) and at head: the same rows, the first
    with its original status, changed_at and observed_at (the insert's time) and the lowest id."""
    from tests import pg

    await _upgrade(empty_database_dsn, "0010")
    old = await _changed_twice_then_dated(empty_database_dsn)
    other = pg.random_name("head")
    head_dsn = await pg.create_database(pg_server_dsn, other)
    try:
        await _upgrade(head_dsn)
        new = await _changed_twice_then_dated(head_dsn)
        inserted_at = (await _fetch(head_dsn, "SELECT first_seen_at FROM twilio.legacy_messages"))[0][0]
    finally:
        await pg.drop_database(pg_server_dsn, other)

    def shown(rows: list[tuple]) -> list[tuple]:
        return [(source, message, account, status, previous, str(changed)) for _, source, message, account, status,
                previous, changed, _ in rows]

    assert shown(new) == shown(old) == [
        ("legacy", "SMlife", ACCOUNT, "queued", None, "2026-11-01 10:00:00+00:00"),
        ("legacy", "SMlife", ACCOUNT, "sent", "queued", "2026-11-01 10:00:01+00:00"),
        ("legacy", "SMlife", ACCOUNT, "delivered", "sent", "2026-11-01 10:00:08+00:00"),
    ]
    ids = [row[0] for row in new]
    assert ids == sorted(ids) and len(set(ids)) == 3
    observed = [row[7] for row in new]
    assert observed[0] == inserted_at and observed == sorted(observed) and len(set(observed)) == 3


async def test_a_message_that_never_changed_is_one_derived_row(db_dsn):
    """A new message writes no history row, yet the history shows its first status; a change
    that shows in no history column (a deletion mark) keeps it derived."""
    await _run(db_dsn, _comms("comms_message_new", "INBOUND", "2026-11-01T10:00:00Z"),
               _comms_set("comms_message_new", deleted_at="2026-11-02T00:00:00Z"))
    assert await _fetch(db_dsn, "SELECT count(*) FROM twilio.message_status_changes") == [(0,)]
    rows = await _fetch(db_dsn, "SELECT h.id = m.first_observation_id, h.status, h.previous_status, "
                                "h.changed_at = m.updated_at, h.observed_at = m.first_seen_at "
                                "FROM twilio.message_status_history AS h JOIN twilio.comms_messages AS m "
                                "ON m.id = h.message_id")
    assert rows == [(True, "received", None, True, True)]
