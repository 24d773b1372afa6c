"""The analyst views (migration 0005) on a real archive: each one's numbers equal the same
question answered independently from the base tables (here in Python over their rows), and
the dashboard's panels and the guide's queries run and agree with the views.

The archive is built once for the module the way the product builds it: the emulator's data
set plus messages added through its hooks (every status of both APIs, both directions, no
price, a second currency, a status change with a known delay, a redaction, a deletion in each
API), archived by backfills as the `backfill` command runs them and by the service's first full
cycle. Those two paths also refresh twilio.daily_account_overview (the days they wrote), so the
tests read it as a user's archive has it.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import anyio
import asyncpg
import pytest

from sync import backfill, models, privacy, schedule, service
from sync.config import Secret, TwilioSettings
from sync.emulator import DEFAULT_ACCOUNT_SID, Emulator, serve
from sync.emulator import generate
from sync.emulator.formats import rfc2822, rfc3339
from sync.models import default_window
from sync.store import Store
from tests import analysts, pg
from tests.cli import cli_env, sync_cli
from tests.conftest import TEMPLATE, run_backfill, settings_for, utcnow

READER = "twilio_archive_reader"
HOUR = 3_600_000
# The controlled status changes: created, then delivered this many seconds later.
LEGACY_DELAY, COMMS_DELAY = 7, 12


async def _backfill(dsn: str, twilio: TwilioSettings) -> None:
    """A backfill of every stream as the `backfill` command runs it (which refreshes the
    daily overview at its end), with small pages."""
    now = utcnow()
    await backfill.run(dsn, twilio, models.STREAMS, default_window(now, None, None), fixed_end=False, now=now,
                       page_size=50)


async def _first_full_cycle(store: Store, twilio: TwilioSettings, dsn: str) -> None:
    """The service (`run`) until its first full cycle is done: a full scan of every stream (the
    legacy one proving deletions), then the refresh of the daily overview."""
    svc = service.Service(store, [twilio], schedule=schedule.Schedule(interval=3600, full_interval=3600),
                          hydrate=False, dsn=dsn)  # its job queue's own connections go there

    def refreshed() -> bool:
        return svc.metrics.registry.get_sample_value("twilio_archive_analytics_last_refresh_timestamp_seconds",
                                                     {"view": "daily_account_overview"}) is not None

    async with anyio.create_task_group() as tg:
        tg.start_soon(svc.run)
        with anyio.fail_after(120):
            while not refreshed():
                await anyio.sleep(0.05)
        svc.stop.set()


def _populate(emu: Emulator) -> dict[str, str]:
    """Messages the generated data set may lack; returns the ids the tests follow."""
    now = emu.clock_ms()
    now -= now % 1000
    for status in sorted(generate.LEGACY_STATUSES):
        inbound = status in ("received", "receiving")
        emu.add_legacy_message(sid=f"SM{status[:8]:0>8}{'0' * 24}", status=status,
                               direction="inbound" if inbound else "outbound-api",
                               date_created=rfc2822(now - 5 * HOUR))
    for status in sorted(generate.V1_STATUSES):
        emu.add_comms_message(status=status, createdAt=rfc3339(now - 5 * HOUR))
    eur = [emu.add_legacy_message(status="delivered", price="-0.04500", price_unit="EUR",
                                  date_created=rfc2822(now - 26 * HOUR))["sid"] for _ in range(3)]
    unpriced = emu.add_legacy_message(status="sent", price=None, date_created=rfc2822(now - 3 * HOUR))["sid"]
    slow = emu.add_legacy_message(status="sent", to="+15005550006", body="see you at 5",
                                  date_created=rfc2822(now - 2 * HOUR), date_sent=rfc2822(now - 2 * HOUR + 1000),
                                  date_updated=rfc2822(now - 2 * HOUR + 2000))["sid"]
    slow_v1 = emu.add_comms_message(status="QUEUED", createdAt=rfc3339(now - 2 * HOUR),
                                    updatedAt=rfc3339(now - 2 * HOUR))["id"]
    redacted = emu.add_legacy_message(status="delivered", body="my card is 4111", num_media="0",
                                      date_created=rfc2822(now - HOUR))["sid"]
    gone = emu.add_legacy_message(status="delivered", date_created=rfc2822(now - HOUR))["sid"]
    gone_v1 = emu.add_comms_message(status="DELIVERED", createdAt=rfc3339(now - HOUR))["id"]
    mms_in = emu.add_legacy_message(status="received", direction="inbound", num_media="4", body="",
                                    date_created=rfc2822(now - 4 * HOUR))["sid"]
    return {"mms_in": mms_in, "eur": eur[0], "unpriced": unpriced, "slow": slow, "slow_v1": slow_v1, "redacted": redacted,
            "gone": gone, "gone_v1": gone_v1, "created_ms": str(now - 2 * HOUR)}


def _change(emu: Emulator, ids: dict[str, str]) -> None:
    """What happens at Twilio after the first backfill."""
    created = int(ids["created_ms"])
    emu.update_legacy_message(ids["slow"], status="delivered", date_updated=rfc2822(created + LEGACY_DELAY * 1000))
    emu.update_comms_message(ids["slow_v1"], status="DELIVERED", updatedAt=rfc3339(created + COMMS_DELAY * 1000))
    emu.update_legacy_message(ids["redacted"], body="")
    emu.delete_legacy_message(ids["gone"])
    emu.update_comms_message(ids["gone_v1"], deletedAt=rfc3339(emu.clock_ms()))


@pytest.fixture(scope="module")
async def archive(pg_server_dsn: str, template_dsn: str):
    """(dsn, followed ids) of a database archived from the emulator, shared by the module's tests."""
    name = pg.random_name("analysts")
    dsn = await pg.clone_database(pg_server_dsn, name, TEMPLATE)
    emu = Emulator(seed=13, comms_messages=200, legacy_messages=200, legacy_days=10)
    ids = _populate(emu)
    try:
        async with serve(emu, host="127.0.0.1", port=0) as base_url:
            twilio = settings_for(base_url)
            await _backfill(dsn, twilio)
            _change(emu, ids)
            await _backfill(dsn, twilio)
            async with await Store.connect(dsn) as store:
                await _first_full_cycle(store, twilio, dsn)
        gone = await fetch(dsn, "SELECT deleted_at FROM twilio.legacy_messages WHERE sid = $1", ids["gone"])
        assert gone[0]["deleted_at"] is not None, "the service's full scan proved the deletion"
        yield dsn, ids
    finally:
        await pg.drop_database(pg_server_dsn, name)


async def fetch(dsn: str, query: str, *args, role: str | None = None) -> list[dict]:
    """Rows of `query` as dicts, run as `role` when given (the analysts' read-only role)."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            if role:
                await conn.execute(f"SET LOCAL ROLE {role}")
            return [dict(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


# --- the base tables, read and interpreted independently of the views --------------------------

FINAL = {"read", "undelivered", "failed", "canceled", "received", "partially_delivered"}


async def base_messages(dsn: str) -> list[dict]:
    """Every archived message from the base tables, in plain Python terms."""
    legacy = await fetch(dsn, "SELECT * FROM twilio.legacy_messages")
    comms = await fetch(dsn, "SELECT * FROM twilio.comms_messages")
    history = await fetch(dsn, "SELECT source, message_id, status, changed_at FROM twilio.message_status_history")
    delivered: dict[tuple[str, str], object] = {}
    for h in history:
        key = (h["source"], h["message_id"])
        if h["status"] == "delivered" and (key not in delivered or h["changed_at"] < delivered[key]):
            delivered[key] = h["changed_at"]
    out = []
    for r in legacy:
        inbound = (r["direction"] or "").lower() == "inbound"
        addresses = f"{r['from_address']} {r['to_address']}".lower()
        channel = next((c for c in ("whatsapp", "rcs", "messenger") if f"{c}:" in addresses), "sms")
        out.append(dict(source="legacy", id=r["sid"], account_sid=r["account_sid"], inbound=inbound,
                        status=(r["status"] or "").lower() or None, channel=channel, body=r["body"],
                        num_media=r["num_media"], from_=r["from_address"], to=r["to_address"],
                        created=r["date_created"], price=r["price"], unit=r["price_unit"],
                        segments=r["num_segments"], error=r["error_code"], deleted=r["deleted_at"] is not None))
    for r in comms:
        inbound = (r["status"] or "").upper() == "INBOUND"
        out.append(dict(source="comms", id=r["id"], account_sid=r["account_sid"], inbound=inbound,
                        status="received" if inbound else (r["status"] or "").lower() or None,
                        channel=(r["from_channel"] or "").lower(), body=r["body"], num_media=None,
                        from_=r["from_address"], to=r["to_address"], created=r["created_at"], price=None,
                        unit=None, segments=None, error=None, deleted=r["deleted_at"] is not None))
    for m in out:
        m["own"], m["other"] = (m["to"], m["from_"]) if m["inbound"] else (m["from_"], m["to"])
        m["day"] = m["created"].astimezone(timezone.utc).date() if m["created"] else None
        at = delivered.get((m["source"], m["id"]))
        m["to_delivered"] = (at - m["created"]).total_seconds() if at and m["created"] else None
    return out


def known_body(body: str | None) -> bool:
    return body is not None and not body.startswith("hmac-sha256:")


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as SQL's percentile_cont."""
    if not values:
        return None
    values = sorted(values)
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


# --- the archive holds every case ---------------------------------------------------------------


async def test_the_archive_holds_every_case_the_views_must_count(archive):
    """Every status of both APIs, both directions, null and present prices, two currencies, a redaction and deletions in both APIs."""
    dsn, ids = archive
    messages = await base_messages(dsn)
    legacy_statuses = {m["status"] for m in messages if m["source"] == "legacy"}
    comms_statuses = {m["status"] for m in messages if m["source"] == "comms"}
    assert legacy_statuses >= generate.LEGACY_STATUSES
    assert comms_statuses >= {s.lower() for s in generate.V1_STATUSES if s != "INBOUND"} | {"received"}
    assert {(m["source"], m["inbound"]) for m in messages} == {(s, d) for s in ("legacy", "comms") for d in (True, False)}
    legacy = [m for m in messages if m["source"] == "legacy"]
    assert any(m["price"] is None for m in legacy) and any(m["price"] is not None for m in legacy)
    assert {m["unit"] for m in legacy if m["price"] is not None} >= {"USD", "EUR"}
    assert {m["id"] for m in messages if m["deleted"]} >= {ids["gone"], ids["gone_v1"]}
    assert next(m for m in messages if m["id"] == ids["redacted"])["body"] == ""


# --- message_facts ------------------------------------------------------------------------------


async def test_message_facts_has_one_row_per_message_of_the_unified_view(archive):
    """message_facts has exactly the (source, id) pairs of twilio.messages."""
    dsn, _ = archive
    facts = await fetch(dsn, "SELECT source, id FROM twilio.message_facts")
    unified = await fetch(dsn, "SELECT source, id FROM twilio.messages")
    assert Counter((r["source"], r["id"]) for r in facts) == Counter((r["source"], r["id"]) for r in unified)
    assert len(facts) == len({(r["source"], r["id"]) for r in facts})


async def test_message_facts_derive_what_the_base_tables_say(archive):
    """counterpart, own address, day/week/month, body length, spend, finality and time to delivered equal those computed from the base rows."""
    dsn, _ = archive
    facts = {(r["source"], r["id"]): r for r in await fetch(dsn, "SELECT * FROM twilio.message_facts")}
    for m in await base_messages(dsn):
        f = facts[(m["source"], m["id"])]
        where = (m["source"], m["id"])
        assert (f["counterpart"], f["own_address"]) == (m["other"], m["own"]), where
        assert f["day"] == m["day"], where
        assert f["week"] == m["day"] - timedelta(days=m["day"].weekday()), where
        assert f["month"] == m["day"].replace(day=1), where
        body = m["body"]
        assert f["body_chars"] == (len(body) if known_body(body) else None), where
        assert f["body_words"] == (len(re.findall(r"[^ \t\n\r\f\v]+", body)) if known_body(body) else None), where
        assert f["body_redacted"] == (None if body is None else body == "" and not m["num_media"]), where
        assert f["spend"] == (None if m["price"] is None else -m["price"]), where
        final = m["status"] in FINAL or (m["status"] == "delivered" and m["channel"] == "sms")
        assert f["is_final"] is final, where
        assert f["seconds_to_delivered"] == m["to_delivered"], where
        assert f["deleted"] is m["deleted"], where


async def test_time_to_delivered_is_measured_from_the_status_change(archive):
    """A message seen sent and later delivered gets the delay Twilio reported, in both APIs."""
    dsn, ids = archive
    rows = await fetch(dsn, "SELECT id, seconds_to_delivered, is_final FROM twilio.message_facts WHERE id = ANY($1)",
                       [ids["slow"], ids["slow_v1"]])
    assert {r["id"]: r["seconds_to_delivered"] for r in rows} == {ids["slow"]: LEGACY_DELAY, ids["slow_v1"]: COMMS_DELAY}
    never = await fetch(dsn, "SELECT count(*) AS n FROM twilio.message_facts WHERE status IN ('failed', 'queued')"
                             " AND seconds_to_delivered IS NOT NULL")
    assert never[0]["n"] == 0


async def test_hashed_and_dropped_bodies_have_no_length(db_dsn, emu, twilio):
    """With --bodies hash or drop, body_chars and body_words are null, except for empty bodies."""
    async with await Store.connect(db_dsn) as store:
        await run_backfill(store, twilio, bodies=privacy.Bodies("hash", Secret("k")))
    rows = await fetch(db_dsn, "SELECT m.body, f.body_chars, f.body_words FROM twilio.message_facts AS f"
                                " JOIN twilio.messages AS m USING (source, id) WHERE source = 'legacy'")
    assert rows and all(r["body"] == "" or r["body"].startswith("hmac-sha256:") for r in rows)
    assert {(r["body_chars"], r["body_words"]) for r in rows if r["body"] != ""} == {(None, None)}
    assert {(r["body_chars"], r["body_words"]) for r in rows if r["body"] == ""} <= {(0, 0)}


# --- daily_account_overview ---------------------------------------------------------------------


def expected_daily(messages: list[dict]) -> dict[tuple, dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for m in messages:
        groups[(m["account_sid"], m["day"], m["source"], m["unit"])].append(m)
    out = {}
    for key, ms in groups.items():
        priced = [m["price"] for m in ms if m["price"] is not None]
        delays = [m["to_delivered"] for m in ms if m["to_delivered"] is not None]
        segments = [m["segments"] for m in ms if m["segments"] is not None]
        out[key] = {
            "messages": len(ms),
            "outbound": sum(not m["inbound"] for m in ms),
            "inbound": sum(m["inbound"] for m in ms),
            **{s: sum(m["status"] == s for m in ms) for s in ("delivered", "read", "undelivered", "failed")},
            "segments": sum(segments) if segments else None,
            "spend": -sum(priced, Decimal(0)) if priced else None,
            "median_seconds_to_delivered": percentile(delays, 0.5),
            "p95_seconds_to_delivered": percentile(delays, 0.95),
            "deleted": sum(m["deleted"] for m in ms),
        }
    return out


async def test_daily_account_overview_equals_the_base_tables(archive):
    """Counts by direction and status, segments, exact spend per currency and delivery percentiles per account, day, API and currency."""
    dsn, _ = archive
    expected = expected_daily(await base_messages(dsn))
    rows = await fetch(dsn, "SELECT * FROM twilio.daily_account_overview")
    actual = {(r["account_sid"], r["day"], r["source"], r["price_unit"]): r for r in rows}
    assert set(actual) == set(expected)
    for key, want in expected.items():
        got = {k: actual[key][k] for k in want}
        for k in ("median_seconds_to_delivered", "p95_seconds_to_delivered"):
            assert got[k] == pytest.approx(want[k]), (key, k)
            got[k] = want[k]
        assert got == want, key
    # Mixed currencies on one day are two rows, never summed together.
    eur_days = {k[1] for k in expected if k[3] == "EUR"}
    assert any((k[1] in eur_days and k[3] == "USD") for k in expected)


async def test_a_backfill_leaves_the_daily_overview_current(db_dsn, emu, base_url):
    """The daily overview holds what `backfill` archived as soon as the command ends, and a message added at Twilio shows after the next backfill."""
    env = cli_env(base_url, db_dsn)

    async def totals() -> tuple[int, int]:
        row = (await fetch(db_dsn, "SELECT (SELECT coalesce(sum(messages), 0) FROM twilio.daily_account_overview) AS s,"
                                   " (SELECT count(*) FROM twilio.messages) AS c"))[0]
        return row["s"], row["c"]

    assert (await sync_cli("backfill", env=env)).returncode == 0
    summed, counted = await totals()
    assert summed == counted > 0
    added = emu.add_legacy_message(status="delivered", price="-0.06000", price_unit="GBP")
    assert (await sync_cli("backfill", env=env)).returncode == 0
    rows = await fetch(db_dsn, "SELECT day, messages, delivered, spend FROM twilio.daily_account_overview"
                               " WHERE price_unit = 'GBP'")
    created = (await fetch(db_dsn, "SELECT date_created FROM twilio.legacy_messages WHERE sid = $1", added["sid"]))[0]
    assert [(r["day"], r["messages"], r["delivered"], r["spend"]) for r in rows] == [
        (created["date_created"].astimezone(timezone.utc).date(), 1, 1, Decimal("0.06000"))]
    assert await totals() == (counted + 1, counted + 1)


async def test_the_daily_overview_is_a_table_its_comment_says_how_to_refresh_by_hand(archive):
    """It is a table (migration 0012) whose comment names the refresh analysts may run by hand;
    run on a current overview, that refresh recomputes nothing and leaves every row as it was."""
    dsn, _ = archive
    kind = await fetch(dsn, "SELECT c.relkind::text, obj_description(c.oid, 'pg_class') AS comment"
                            " FROM pg_class AS c WHERE c.oid = 'twilio.daily_account_overview'::regclass")
    assert kind[0]["relkind"] == "r"
    by_hand = "SELECT twilio.refresh_daily_account_overview()"
    assert by_hand in kind[0]["comment"]
    before = await fetch(dsn, "SELECT * FROM twilio.daily_account_overview ORDER BY account_sid, day, source, price_unit")
    assert await fetch(dsn, by_hand + " AS days") == [{"days": 0}]
    after = await fetch(dsn, "SELECT * FROM twilio.daily_account_overview ORDER BY account_sid, day, source, price_unit")
    assert after == before and any(r["price_unit"] is None for r in after)


async def test_daily_account_overview_sums_to_every_message(archive):
    """Summed over all rows, messages equals count(*) of twilio.messages."""
    dsn, _ = archive
    rows = await fetch(dsn, "SELECT (SELECT sum(messages) FROM twilio.daily_account_overview) AS summed,"
                            " (SELECT count(*) FROM twilio.messages) AS counted")
    assert rows[0]["summed"] == rows[0]["counted"] > 0


# --- number_overview ----------------------------------------------------------------------------


async def test_number_overview_equals_the_base_tables(archive):
    """Per own number: counts, spend per currency, first and last message."""
    dsn, _ = archive
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for m in await base_messages(dsn):
        groups[(m["account_sid"], m["own"])].append(m)
    rows = {(r["account_sid"], r["number"]): r for r in await fetch(dsn, "SELECT * FROM twilio.number_overview")}
    assert set(rows) == set(groups)
    for key, ms in groups.items():
        r = rows[key]
        spend: dict[str, Decimal] = defaultdict(Decimal)
        for m in ms:
            if m["price"] is not None:
                spend[m["unit"]] -= m["price"]
        assert (r["messages"], r["outbound"], r["inbound"]) == (
            len(ms), sum(not m["inbound"] for m in ms), sum(m["inbound"] for m in ms)), key
        assert [r[s] for s in ("delivered", "read", "undelivered", "failed")] == [
            sum(m["status"] == s for m in ms) for s in ("delivered", "read", "undelivered", "failed")], key
        assert r["first_seen"] == min(m["created"] for m in ms) and r["last_seen"] == max(m["created"] for m in ms)
        assert (json.loads(r["spend_by_currency"]) if r["spend_by_currency"] else {}) == {
            k: pytest.approx(float(v)) for k, v in spend.items()}, key
        if len(spend) == 1:
            assert (r["price_unit"], r["spend"]) == next(iter(spend.items())), key
        else:
            assert (r["price_unit"], r["spend"]) == (None, None), key


# --- error_overview -----------------------------------------------------------------------------


async def test_error_overview_equals_the_base_tables(archive):
    """Per day and error code: messages, their share of the day's outbound legacy messages, and an example that has that code."""
    dsn, _ = archive
    expected = await fetch(dsn, """
        WITH l AS (SELECT (date_created AT TIME ZONE 'UTC')::date AS day, * FROM twilio.legacy_messages)
        SELECT e.day, e.error_code, count(*) AS messages,
               (SELECT count(*) FROM l AS o WHERE lower(o.direction) <> 'inbound' AND o.day = e.day) AS outbound
        FROM l AS e WHERE e.error_code IS NOT NULL GROUP BY e.day, e.error_code""")
    rows = await fetch(dsn, "SELECT * FROM twilio.error_overview")
    assert len(rows) == len(expected) > 3
    by_key = {(r["day"], r["error_code"]): r for r in rows}
    for e in expected:
        r = by_key[(e["day"], e["error_code"])]
        assert (r["messages"], r["outbound"]) == (e["messages"], e["outbound"])
        assert float(r["share_of_outbound"]) == pytest.approx(e["messages"] / e["outbound"], abs=1e-6)
    examples = await fetch(dsn, "SELECT e.day, e.error_code, l.error_code AS actual, (l.date_created AT TIME ZONE 'UTC')::date AS actual_day"
                                " FROM twilio.error_overview AS e JOIN twilio.legacy_messages AS l ON l.sid = e.example_message_id")
    assert len(examples) == len(rows)
    assert all((x["actual"], x["actual_day"]) == (x["error_code"], x["day"]) for x in examples)


# --- the reader role ----------------------------------------------------------------------------


async def test_the_reader_role_reads_every_analyst_view(archive):
    """twilio_archive_reader selects from each new view."""
    dsn, _ = archive
    for view in ("message_facts", "daily_account_overview", "number_overview", "error_overview"):
        rows = await fetch(dsn, f"SELECT count(*) AS n FROM twilio.{view}", role=READER)
        assert rows[0]["n"] > 0, view


# --- the analysts' dashboard ---------------------------------------------------------------------


def _by_day(facts: list[dict]) -> dict:
    days: dict = defaultdict(list)
    for f in facts:
        days[f["day"]].append(f)
    return dict(sorted(days.items()))


def expected_panels(facts: list[dict], errors: list[dict], numbers: list[dict]) -> dict[str, list[dict]]:
    """Each panel's rows, computed in Python from the views' rows (the whole archive, all accounts)."""
    def midnight(day):
        return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)

    shown = ("delivered", "read", "sent", "received", "undelivered", "failed")
    days = _by_day(facts)
    by_status = [{"time": midnight(d), **{s: sum(f["status"] == s for f in fs) for s in shown},
                  "other": sum(f["status"] not in shown for f in fs)} for d, fs in days.items()]
    rate = []
    for d, fs in days.items():
        done = [f for f in fs if f["status"] in ("delivered", "read", "undelivered", "failed")]
        ok = sum(f["status"] in ("delivered", "read") for f in done)
        rate.append({"time": midnight(d), "delivery_rate": Decimal(ok) / len(done) if done else None})
    timing = []
    for d, fs in days.items():
        delays = [f["seconds_to_delivered"] for f in fs if f["seconds_to_delivered"] is not None]
        if delays:
            timing.append({"time": midnight(d), "median": percentile(delays, 0.5), "p95": percentile(delays, 0.95)})
    spend: dict = defaultdict(Decimal)
    for f in facts:
        if f["spend"] is not None:
            spend[(f["day"], f["price_unit"])] += f["spend"]
    per_code: dict = defaultdict(lambda: {"messages": 0, "outbound": 0, "examples": []})
    for e in errors:
        c = per_code[e["error_code"]]
        c["messages"] += e["messages"]
        c["outbound"] += e["outbound"]
        c["examples"].append(e["example_message_id"])
    codes = sorted(per_code.items(), key=lambda kv: (-kv[1]["messages"], kv[0]))[:10]
    top = sorted(numbers, key=lambda n: (-n["messages"], n["number"] is None, n["number"] or ""))[:10]
    return {
        "Daily messages by status": by_status,
        "Delivery rate": rate,
        "Time to delivered (median, p95)": timing,
        "Spend per day": [{"time": midnight(d), "metric": u, "spend": v} for (d, u), v in sorted(spend.items())],
        "Top error codes": [{"error_code": k, "messages": c["messages"],
                             "share_of_outbound": Decimal(c["messages"]) / c["outbound"],
                             "example_message_id": min(c["examples"])} for k, c in codes],
        "Top numbers": [{"number": n["number"], "messages": n["messages"], "outbound": n["outbound"],
                         "inbound": n["inbound"], "delivered": n["delivered"],
                         "not_delivered": n["failed"] + n["undelivered"],
                         "spend": n["spend"], "price_unit": n["price_unit"], "last_seen": n["last_seen"]} for n in top],
    }


def same(got, want) -> bool:
    if isinstance(want, float) or isinstance(got, float):
        return got == pytest.approx(want)
    if isinstance(want, Decimal) and isinstance(got, Decimal):
        return abs(got - want) < Decimal("1e-12")
    return got == want


async def test_every_dashboard_panel_runs_as_the_reader_and_agrees_with_the_views(archive):
    """Each panel's SQL, run with the read-only role over the whole archive, returns what the views say."""
    dsn, _ = archive
    facts = await fetch(dsn, "SELECT * FROM twilio.message_facts")
    errors = await fetch(dsn, "SELECT * FROM twilio.error_overview")
    numbers = await fetch(dsn, "SELECT * FROM twilio.number_overview")
    expected = expected_panels(facts, errors, numbers)
    board = analysts.dashboard()
    accounts = [r["account_sid"] for r in await fetch(dsn, analysts.account_query(board), role=READER)]
    queries = analysts.panel_sql(board)
    assert sorted(title for title, _ in queries) == sorted(expected)
    for title, sql in queries:
        rows = await fetch(dsn, analysts.substitute(sql, accounts=accounts, days=400), role=READER)
        want = expected[title]
        assert rows, title
        assert len(rows) == len(want), title
        for got_row, want_row in zip(rows, want, strict=True):
            assert set(got_row) == set(want_row), title
            assert all(same(got_row[k], want_row[k]) for k in want_row), (title, got_row, want_row)


async def test_the_dashboard_variables_and_filters_run(archive):
    """The account variable's query lists the archive's account, and a panel filtered to another account is empty."""
    dsn, _ = archive
    accounts = await fetch(dsn, analysts.account_query(analysts.dashboard()), role=READER)
    assert [r["account_sid"] for r in accounts] == [DEFAULT_ACCOUNT_SID]
    title, sql = analysts.panel_sql(analysts.dashboard())[0]
    assert await fetch(dsn, analysts.substitute(sql, accounts=["AC" + "0" * 32]), role=READER) == [], title
    assert await fetch(dsn, analysts.substitute(sql, accounts=[DEFAULT_ACCOUNT_SID]), role=READER), title


# --- docs/analysts.md ----------------------------------------------------------------------------


async def test_the_guide_asks_eleven_questions_and_each_query_answers_as_the_reader(archive):
    """Every numbered question of docs/analysts.md has SQL that runs as twilio_archive_reader and returns rows."""
    dsn, _ = archive
    questions = analysts.guide_queries()
    assert len(questions) == 11
    for title, sql in questions:
        assert await fetch(dsn, sql, role=READER), title


async def test_the_guide_answers_agree_with_the_base_tables(archive):
    """Spot checks: the guide's delivery rate, costs, stuck messages and redactions match the base rows."""
    dsn, ids = archive
    answers = {title.split(".")[0]: await fetch(dsn, sql) for title, sql in analysts.guide_queries()}
    messages = await base_messages(dsn)
    recent = [m for m in messages if m["day"] >= (utcnow() - timedelta(days=30)).date()]
    for row in answers["1"]:
        day = [m for m in recent if m["day"] == row["day"]]
        assert row["delivered"] == sum(m["status"] in ("delivered", "read") for m in day)
        assert row["not_delivered"] == sum(m["status"] in ("undelivered", "failed") for m in day)
    cost: dict = defaultdict(Decimal)
    for m in messages:
        if m["price"] is not None:
            cost[(m["day"], m["unit"])] -= m["price"]
    assert {(r["day"], r["price_unit"]): r["spend"] for r in answers["2"]} == cost
    stuck = {m["id"] for m in messages if m["status"] in ("queued", "scheduled", "accepted", "sending")
             and m["created"] < utcnow() - timedelta(hours=1)}
    assert {r["id"] for r in answers["5"]} == stuck
    assert sum(r["redacted"] for r in answers["7"]) == sum(m["body"] == "" and not m["num_media"] for m in messages)
    assert sum(r["deleted_at_twilio"] for r in answers["7"]) == sum(m["deleted"] for m in messages) >= 2


async def test_the_guide_counts_the_mms_received_last_week_by_content_type(archive):
    """Question 11 counts every media item of the inbound legacy messages of the last 7 days, per content type."""
    dsn, ids = archive
    sql = dict(analysts.guide_queries())["11. MMS we received last week, by content type"]
    answer = await fetch(dsn, sql, role=READER)
    messages = {r["sid"]: r for r in await fetch(dsn, "SELECT sid, direction, date_created FROM twilio.legacy_messages")}
    expected: dict = defaultdict(lambda: [0, set(), 0])
    for item in await fetch(dsn, "SELECT message_sid, content_type, deleted_at FROM twilio.legacy_media"):
        m = messages[item["message_sid"]]
        if m["direction"] == "inbound" and m["date_created"] >= utcnow() - timedelta(days=7):
            e = expected[item["content_type"]]
            e[0], e[2] = e[0] + 1, e[2] + (item["deleted_at"] is not None)
            e[1].add(m["sid"])
    assert {r["content_type"]: (r["items"], r["messages"], r["deleted_at_twilio"]) for r in answer} == \
        {k: (n, len(sids), gone) for k, (n, sids, gone) in expected.items()}
    assert ids["mms_in"] in {sid for _, sids, _ in expected.values() for sid in sids}
