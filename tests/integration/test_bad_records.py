"""Records that cannot be taken exactly as served never stop a run: they are kept (raw, or
whole in twilio.rejected_records), the typed columns hold what could be derived, and each
problem is counted and listed in twilio.record_problems."""

from __future__ import annotations

import json
import random
import string

import orjson

from sync.config import Secret
from sync.privacy import Bodies
from tests import servers
from tests.conftest import run_backfill, settings_for

LEGACY = ("legacy_messages",)


async def legacy_row(store, sid: str, columns: str = "*"):
    return (await store.fetch(f"SELECT {columns} FROM twilio.legacy_messages WHERE sid = $1", sid))[0]


async def test_a_1600_character_body_is_stored_whole(store, emu, twilio):
    """The longest body Twilio accepts (1,600 characters, here multi-byte) is stored to the last character."""
    body = ("é👍" * 800)[:1600]
    message = emu.add_legacy_message(body=body)
    await run_backfill(store, twilio, streams=LEGACY)
    row = await legacy_row(store, message["sid"], "body, parse_problems")
    assert row["body"] == body and len(row["body"]) == 1600 and row["parse_problems"] is None


async def test_fields_of_the_wrong_type_leave_their_columns_null_and_are_listed(store, emu, twilio):
    """A number where text belongs, an object where a count belongs: the column is null, raw keeps
    the value, the problem is listed per field and counted once for the record."""
    message = emu.add_legacy_message(body=42, num_media={"n": 1}, price=["-0.0075"], error_code="E30003")
    results = await run_backfill(store, twilio, streams=LEGACY)
    row = await legacy_row(store, message["sid"], "body, num_media, price, error_code, raw, parse_problems")
    assert (row["body"], row["num_media"], row["price"], row["error_code"]) == (None, None, None, None)
    assert json.loads(row["raw"])["num_media"] == {"n": 1}
    assert sorted(p.split(":")[0] for p in row["parse_problems"]) == ["body", "error_code", "num_media", "price"]
    assert results["legacy_messages"].problems == 1
    scan = (await store.fetch("SELECT problems FROM twilio.scans"))[0]
    assert scan["problems"] == 1


async def test_a_rescan_counts_the_problems_of_the_records_it_does_not_write(store, emu, twilio):
    """An unchanged record is not typed again, yet a rescan reports each flagged record (a field of
    the wrong type, a NUL) once, as the first pass did, and writes nothing."""
    emu.add_legacy_message(num_media={"n": 1})
    emu.add_legacy_message(body="a\x00b")
    first = await run_backfill(store, twilio, streams=LEGACY)
    again = await run_backfill(store, twilio, streams=LEGACY)
    assert first["legacy_messages"].problems == again["legacy_messages"].problems == 2
    assert (again["legacy_messages"].inserted, again["legacy_messages"].updated) == (0, 0)
    scans = await store.fetch("SELECT problems, rows_inserted FROM twilio.scans ORDER BY id")
    assert [(s["problems"], s["rows_inserted"] > 0) for s in scans] == [(2, True), (2, False)]


async def test_a_lone_surrogate_is_replaced_counted_and_kept_exactly(store, emu, twilio):
    """JSON may carry a lone UTF-16 surrogate (\\ud800) that neither UTF-8 nor Postgres can store:
    it becomes U+FFFD, the exact JSON is in raw_text, and the record is reported."""
    message = emu.add_legacy_message(body="half a pair: \ud83d!")
    results = await run_backfill(store, twilio, streams=LEGACY)
    row = await legacy_row(store, message["sid"], "body, raw->>'body' AS raw_body, raw_text, parse_problems")
    assert row["body"] == row["raw_body"] == "half a pair: \ufffd!"
    assert json.loads(row["raw_text"])["body"] == "half a pair: \ud83d!"
    assert row["parse_problems"][0].startswith("surrogate_replaced")
    assert results["legacy_messages"].problems == 1


async def test_a_record_without_an_id_is_kept_aside_whole_and_the_page_goes_on(store, emu):
    """A record with no SID cannot be upserted: it is kept in twilio.rejected_records, once even
    when served again, and listed in twilio.record_problems; its page's other records are archived."""
    good = [emu.add_legacy_message(), emu.add_legacy_message()]
    nameless = {**good[0], "sid": None, "body": "who am I?"}
    page = orjson.dumps({"messages": [good[0], nameless, good[1]], "next_page_uri": None, "page": 0})
    async with servers.serve(lambda request: servers.json_body(page)) as server:
        twilio = settings_for(server.base_url)
        for _ in range(2):
            results = await run_backfill(store, twilio, streams=LEGACY)
    assert await store.status.count("legacy_messages") == 2
    rejected = await store.fetch("SELECT stream, record_key, reason, raw_text FROM twilio.rejected_records")
    assert len(rejected) == 1, "served twice, kept once"
    assert rejected[0]["record_key"] is None and "sid" in rejected[0]["reason"]
    assert json.loads(rejected[0]["raw_text"]) == nameless
    assert results["legacy_messages"].problems == 1
    problems = await store.fetch("SELECT stored, problems FROM twilio.record_problems")
    assert [(p["stored"], p["problems"]) for p in problems] == [(False, [rejected[0]["reason"]])]


async def test_a_row_postgres_refuses_is_kept_aside_and_the_rest_of_its_page_archived(store, emu, twilio):
    """A value too large for an index entry makes Postgres refuse the row (not the page): the row goes
    to twilio.rejected_records with Postgres's reason, the page's other rows and its checkpoint commit."""
    rng = random.Random(1)
    huge = "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(20_000))  # incompressible
    message = emu.add_legacy_message(**{"from": huge})
    await run_backfill(store, twilio, streams=LEGACY)
    served = {p["sid"] for p in emu.legacy_payloads()}
    stored = {r["sid"] for r in await store.fetch("SELECT sid FROM twilio.legacy_messages")}
    assert message["sid"] not in stored
    rejected = await store.fetch("SELECT record_key, reason, raw_text FROM twilio.rejected_records")
    assert [r["record_key"] for r in rejected] == [message["sid"]]
    assert "Postgres refused it" in rejected[0]["reason"] and json.loads(rejected[0]["raw_text"])["from"] == huge
    window_sids = stored | {message["sid"]}
    assert window_sids <= served and len(stored) > 50, "the rest of the window was archived"
    scan = (await store.fetch("SELECT status, rejected FROM twilio.scans"))[0]
    assert (scan["status"], scan["rejected"]) == ("complete", 1)


async def test_bodies_can_be_archived_hashed_or_not_at_all(store, emu, twilio):
    """--bodies hash stores an HMAC in place of the text (in body and raw alike), drop stores none;
    an empty (redacted) body stays empty either way, and the text itself never reaches the database."""
    secret_text = "your code is 493817"
    message = emu.add_legacy_message(body=secret_text)
    redacted = emu.add_legacy_message(body="")
    await run_backfill(store, twilio, streams=LEGACY, bodies=Bodies("hash", Secret("k3y")))
    row = await legacy_row(store, message["sid"], "body, raw->>'body' AS raw_body")
    assert row["body"] == row["raw_body"] and row["body"].startswith("hmac-sha256:") and len(row["body"]) == 76
    assert (await legacy_row(store, redacted["sid"], "body"))["body"] == ""
    leaked = await store.fetch("SELECT sid FROM twilio.legacy_messages WHERE raw::text LIKE '%' || $1 || '%'", secret_text)
    assert leaked == []

    await run_backfill(store, twilio, streams=LEGACY, bodies=Bodies("drop"))
    row = await legacy_row(store, message["sid"], "body, raw->'body' AS raw_body")
    assert row["body"] is None and row["raw_body"] == "null"
    assert (await legacy_row(store, redacted["sid"], "body"))["body"] == ""


async def test_hidden_bodies_stay_hidden_in_records_kept_aside(store, emu):
    """A record without an id is kept whole in rejected_records, but under --bodies drop its text is not."""
    nameless = {**emu.add_legacy_message(), "sid": None, "body": "your code is 493817"}
    page = orjson.dumps({"messages": [nameless], "next_page_uri": None, "page": 0})
    async with servers.serve(lambda request: servers.json_body(page)) as server:
        await run_backfill(store, settings_for(server.base_url), streams=LEGACY, bodies=Bodies("drop"))
    kept = await store.fetch("SELECT raw_text FROM twilio.rejected_records")
    assert len(kept) == 1 and json.loads(kept[0]["raw_text"])["body"] is None
