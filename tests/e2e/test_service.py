"""`run`, the long-running service, as a real process against the emulator and a real Postgres:
changes made at "Twilio" while it runs reach the archive; SIGTERM loses nothing; replicas
never scan one stream at once and take over from a dead one; the probes and /metrics work."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime, timedelta, timezone

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sync import emulator, parsing
from sync.emulator import Account, FaultProfile
from sync.emulator.formats import rfc2822, rfc3339
from sync.models import STREAMS, Window
from tests import pg
from tests.archive import served
from tests.cli import cli_env, held_after, sync_cli, until_held
from tests.service import FAST, Service, complete_scans, eventually, query

pytestmark = pytest.mark.timeout(180)


def now_ms() -> int:
    return int(time.time() * 1000)


async def archived(dsn: str, table: str, key: str, ident: str):
    rows = await query(dsn, f"SELECT * FROM twilio.{table} WHERE {key} = $1", ident)
    return rows[0] if rows else None


async def raw_of(dsn: str, table: str, key: str, ident: str) -> dict | None:
    row = await archived(dsn, table, key, ident)
    return None if row is None else json.loads(row["raw"])


async def test_changes_made_at_twilio_reach_the_archive_while_the_service_runs(db_dsn):
    emu = emulator.Emulator(seed=21, comms_messages=300, legacy_messages=300, legacy_days=30)
    async with emulator.serve(emu) as url:
        env = cli_env(url, db_dsn)
        # Older legacy history first, as a user would backfill it before starting the service.
        assert (await sync_cli("backfill", "--source", "legacy",
                               "--since", (datetime.now(timezone.utc) - timedelta(days=20)).date().isoformat(),
                               env=env)).returncode == 0
        old = await query(db_dsn, "SELECT sid, last_changed_at FROM twilio.legacy_messages "
                                  "WHERE date_created < now() - interval '8 days' ORDER BY sid")
        assert old, "the data set has legacy messages older than the 7-day window"
        async with Service(env, *FAST):
            await eventually(lambda: _all_full(db_dsn), what="a first full scan of every stream")

            # New messages: a legacy one still queued (no date_sent yet) and a v1 one.
            t0 = time.monotonic()
            queued = emu.add_legacy_message(status="queued", date_sent=None, price=None, body="see you at 5")
            fresh = emu.add_comms_message(status="QUEUED", content={"text": "v1 says hello"})
            await eventually(lambda: archived(db_dsn, "legacy_messages", "sid", queued["sid"]), what="new legacy")
            legacy_seconds = time.monotonic() - t0
            await eventually(lambda: archived(db_dsn, "comms_messages", "id", fresh["id"]), what="new v1 message")
            comms_seconds = time.monotonic() - t0
            print(f"\nfreshness: legacy {legacy_seconds:.2f} s, v1 {comms_seconds:.2f} s from creation to archive")

            # Status changes, a late price, a redaction, a v1 deletion, a legacy deletion.
            for status in ("sent", "delivered"):
                fields = {"status": status}
                if status == "sent":
                    fields["date_sent"] = rfc2822(now_ms())
                emu.update_legacy_message(queued["sid"], **fields)
                await eventually(lambda s=status: _has(db_dsn, "legacy_messages", "sid", queued["sid"], "status", s))
            emu.update_legacy_message(queued["sid"], price="-0.00790", price_unit="USD")
            for status in ("SENT", "DELIVERED"):
                emu.update_comms_message(fresh["id"], status=status)
                await eventually(lambda s=status: _has(db_dsn, "comms_messages", "id", fresh["id"], "status", s))
            recent = [p for p in emu.legacy_payloads() if p["body"] and p["sid"] != queued["sid"]]
            redacted, deleted = recent[5]["sid"], recent[6]["sid"]
            emu.update_legacy_message(redacted, body="")
            gone_v1 = emu.comms_payloads()[3]["id"]
            emu.update_comms_message(gone_v1, deletedAt=rfc3339(now_ms()))
            emu.delete_legacy_message(deleted)
            # Twilio deleting a message older than the window must not touch its row.
            emu.delete_legacy_message(old[0]["sid"])

            await eventually(lambda: _has(db_dsn, "legacy_messages", "sid", queued["sid"], "price", -0.0079))
            await eventually(lambda: _has(db_dsn, "legacy_messages", "sid", redacted, "body", ""))
            await eventually(lambda: _deleted(db_dsn, "comms_messages", "id", gone_v1))
            await eventually(lambda: _deleted(db_dsn, "legacy_messages", "sid", deleted), what="legacy deletion")
            await eventually(lambda: _has(db_dsn, "comms_messages", "id", fresh["id"], "body", "v1 says hello"),
                             what="hydrated v1 body")

        # Every row of the window is what the emulator serves now, payload for payload.
        window = Window(datetime.now(timezone.utc) - timedelta(days=7) + timedelta(minutes=1),
                        datetime.now(timezone.utc))
        for stream, key in (("legacy_messages", "sid"), ("comms_messages", "id"), ("comms_operations", "id")):
            expected = served(emu, stream, window)
            rows = await query(db_dsn, f"SELECT {key}, raw FROM twilio.{stream} WHERE "
                                       f"{'date_created' if stream == 'legacy_messages' else 'created_at'} >= $1",
                               window.start)
            assert {r[0]: json.loads(r["raw"]) for r in rows if r[0] != deleted} == expected, stream

        # The deleted message is kept, marked; nothing else in the window is marked.
        marked = await query(db_dsn, "SELECT sid FROM twilio.legacy_messages WHERE deleted_at IS NOT NULL")
        assert [r[0] for r in marked] == [deleted]
        assert (await raw_of(db_dsn, "legacy_messages", "sid", deleted)) is not None
        # Records older than the window stay exactly as they were.
        still = await query(db_dsn, "SELECT sid, last_changed_at FROM twilio.legacy_messages "
                                    "WHERE date_created < now() - interval '8 days' ORDER BY sid")
        assert [tuple(r) for r in still] == [tuple(r) for r in old]

        # The status history tells the story of each message, in order.
        history = await query(db_dsn, "SELECT message_id, status, previous_status FROM twilio.message_status_history "
                                      "WHERE message_id = ANY($1) ORDER BY id", [queued["sid"], fresh["id"]])
        assert [(r[1], r[2]) for r in history if r[0] == queued["sid"]] == [
            ("queued", None), ("sent", "queued"), ("delivered", "sent")]
        assert [(r[1], r[2]) for r in history if r[0] == fresh["id"]] == [
            ("queued", None), ("sent", "queued"), ("delivered", "sent")]


async def _all_full(dsn: str) -> bool:
    return await complete_scans(dsn, "full") == set(STREAMS)


async def _has(dsn: str, table: str, key: str, ident: str, column: str, value) -> bool:
    row = await archived(dsn, table, key, ident)
    return row is not None and (row[column] == value or (isinstance(value, float) and row[column] is not None
                                                         and float(row[column]) == value))


async def _deleted(dsn: str, table: str, key: str, ident: str) -> bool:
    row = await archived(dsn, table, key, ident)
    return row is not None and row["deleted_at"] is not None


async def test_the_service_refreshes_the_daily_overview_after_each_full_cycle(db_dsn):
    """`run` refreshes twilio.daily_account_overview once it has fully scanned
    every stream, logs it, shows it on /metrics, and does it again each full cycle."""
    emu = emulator.Emulator(seed=23, comms_messages=100, legacy_messages=100, legacy_days=5)

    async def gbp_rows() -> list:
        return await query(db_dsn, "SELECT messages FROM twilio.daily_account_overview WHERE price_unit = 'GBP'")

    async with emulator.serve(emu) as url:
        async with Service(cli_env(url, db_dsn), *FAST) as svc:
            await eventually(lambda: _refreshed(svc), what="a refresh after the first full cycle")
            assert await _all_full(db_dsn), "refreshed before every stream had a complete full scan"
            assert svc.events("analytics.refreshed")[0]["view"] == "twilio.daily_account_overview"
            status, text = await svc.get("/metrics")
            assert status == 200
            assert 'twilio_archive_analytics_last_refresh_timestamp_seconds{view="daily_account_overview"}' in text
            assert await gbp_rows() == []
            emu.add_legacy_message(status="delivered", price="-0.06000", price_unit="GBP")
            await eventually(gbp_rows, timeout=60, what="the new message in the overview after a later full cycle")
    assert [r["messages"] for r in await gbp_rows()] == [1]


async def _refreshed(svc: Service) -> bool:
    return bool(svc.events("analytics.refreshed"))


async def test_an_idle_cycle_writes_no_archive_row(db_dsn):
    """The note's figure: what one scan cycle costs when nothing changed at Twilio."""
    emu = emulator.Emulator(seed=22, comms_messages=2_000, legacy_messages=2_000, legacy_days=7)
    async with emulator.serve(emu) as url:
        async with Service(cli_env(url, db_dsn), *FAST, "--full-interval", "3600"):
            await eventually(lambda: _all_full(db_dsn), what="a first full scan of every stream")
            await eventually(lambda: _hydrated(db_dsn), what="every v1 message hydrated")
            before_rows = await _rows_written(db_dsn)
            before_requests = sum(emu.request_counts.values())
            before_scans = await query(db_dsn, "SELECT count(*) FROM twilio.scans WHERE kind = 'recent'")
            await anyio.sleep(4)
            after_rows = await _rows_written(db_dsn)
            requests = sum(emu.request_counts.values()) - before_requests
            cycles = (await query(db_dsn, "SELECT count(*) FROM twilio.scans WHERE kind = 'recent'"))[0][0] - before_scans[0][0]
    assert cycles >= 6  # several look-back scans of each stream ran
    assert after_rows == before_rows, "an idle cycle wrote to an archive table"
    print(f"\nidle: {cycles} look-back scans, {requests} requests ({requests / cycles * 3:.1f} per cycle of 3 streams), "
          f"0 archive rows written")


async def _hydrated(dsn: str) -> bool:
    return (await query(dsn, "SELECT count(*) FROM twilio.comms_messages WHERE hydrated_at IS NULL"))[0][0] == 0


async def _rows_written(dsn: str) -> dict[str, set]:
    """Every row version of the archive tables: a write of any kind (insert, update, even one
    that changes nothing) gives its row a new xmin. The status history is a view (0011): its rows
    are kept in message_status_changes, or derived from the message rows."""
    out = {}
    for table, key in (*((s, KEYS[s]) for s in STREAMS), ("message_status_changes", "id")):
        rows = await query(dsn, f"SELECT {key}::text, xmin::text FROM twilio.{table}")
        out[table] = {tuple(r) for r in rows}
    return out


KEYS = {"legacy_messages": "sid", "comms_messages": "id", "comms_operations": "id"}


async def test_sigterm_mid_scan_exits_0_within_10_s_and_the_next_start_loses_nothing(db_dsn):
    emu = emulator.Emulator(seed=23, comms_messages=3_000, legacy_messages=3_000, legacy_days=7,
                            faults=FaultProfile(slow=1.0, slow_seconds=0.05))
    async with emulator.serve(emu) as url:
        env = cli_env(url, db_dsn)
        async with held_after(emu, 20):  # of some 70 requests: the first full scans cannot end
            svc = await Service(env, *FAST).start()
            try:
                await eventually(lambda: _pages(db_dsn, 5), what="a full scan under way")
                await until_held(emu, svc.proc)
                started = time.monotonic()
                svc.signal(signal.SIGTERM)
                with anyio.fail_after(10):
                    await svc.proc.wait()
                stopped_in = time.monotonic() - started
            finally:
                await svc.stop()
        assert svc.proc.returncode == 0
        assert svc.events("service.stopped"), "it said it stopped"
        running = await query(db_dsn, "SELECT id, cursor IS NOT NULL OR EXISTS (SELECT 1 FROM twilio.scan_slices s "
                                      "WHERE s.scan_id = scans.id AND s.cursor IS NOT NULL) AS waiting "
                                      "FROM twilio.scans WHERE status = 'running'")
        assert running and all(r["waiting"] for r in running), "the interrupted scans wait at their checkpoints"
        # Each row was inserted by exactly one committed page: none half-saved, none twice.
        assert await _inserted_equals_rows(db_dsn)

        emu.faults.profile = FaultProfile()
        async with Service(env, *FAST):
            await eventually(lambda: _complete(db_dsn, [r["id"] for r in running]), what="the same scans resumed")
        assert await _inserted_equals_rows(db_dsn)
        window = Window(datetime.now(timezone.utc) - timedelta(days=7) + timedelta(minutes=1), datetime.now(timezone.utc))
        for stream, key, created in (("legacy_messages", "sid", "date_created"), ("comms_messages", "id", "created_at")):
            rows = await query(db_dsn, f"SELECT {key}, raw FROM twilio.{stream} WHERE {created} >= $1", window.start)
            assert {r[0]: json.loads(r["raw"]) for r in rows} == served(emu, stream, window)
    print(f"\nSIGTERM to exit: {stopped_in:.2f} s")


async def _pages(dsn: str, n: int) -> bool:
    return (await query(dsn, "SELECT coalesce(sum(pages), 0) FROM twilio.scans"))[0][0] >= n


async def _complete(dsn: str, ids: list[int]) -> bool:
    rows = await query(dsn, "SELECT count(*) FROM twilio.scans WHERE id = ANY($1) AND status = 'complete'", ids)
    return rows[0][0] == len(ids)


async def _inserted_equals_rows(dsn: str) -> bool:
    for stream in STREAMS:
        inserted = (await query(dsn, "SELECT coalesce(sum(rows_inserted), 0) FROM twilio.scans WHERE stream = $1",
                                stream))[0][0]
        rows = (await query(dsn, f"SELECT count(*) FROM twilio.{stream}"))[0][0]
        if inserted != rows:
            return False
    return True


async def test_two_replicas_share_the_accounts_and_the_survivor_completes_a_dead_ones(db_dsn):
    """Two replicas over one main account and its subaccounts: both take rounds, neither less than a
    third, never one stream of an account at once; after kill -9 of one, the other takes its
    accounts over (after the queue's heartbeat timeout) and the archive ends exact."""
    emu = emulator.Emulator(seed=24, comms_messages=150, legacy_messages=150, legacy_days=7, subaccounts=5,
                            subaccount_messages=100)
    sids = [emulator.DEFAULT_ACCOUNT_SID] + [p.sid for p in emu.directory.subaccounts()]
    async with emulator.serve(emu) as url:
        env = cli_env(url, db_dsn, TWILIO_ARCHIVE_SUBACCOUNTS="true")
        a, b = Service(env, *FAST), Service(env, *FAST)
        async with a, b:
            await eventually(lambda: _full_per_account(db_dsn, set(sids)), timeout=90, what="every account scanned")
            # Enough rounds that chance alone rarely leaves a side under a third (one side's share
            # of 120 fair draws: 50% +- 4.6%), and the rounds a took before b was up weigh little.
            async def many_rounds() -> bool:
                return _rounds(a) + _rounds(b) >= 120

            await eventually(many_rounds, timeout=120, what="120 rounds")
            share = _rounds(a) / (_rounds(a) + _rounds(b))
            assert 1 / 3 <= share <= 2 / 3, f"replica a took {share:.0%} of the rounds"
            for sid in sids:
                for stream in STREAMS:
                    _no_overlap(a.events(), b.events(), stream, sid)
            # Kill a while the gate holds the replicas' requests: whatever a had in flight stays
            # unanswered, its jobs picked, until the queue's heartbeat timeout hands them to b.
            async with held_after(emu, 0):
                await until_held(emu, a.proc)
                killed_at, killed_wall = time.monotonic(), time.time()
                await a.kill()
            fresh = {sid: emu.add_legacy_message(sid)["sid"] for sid in sids}
            await eventually(lambda: _full_after(db_dsn, set(sids), killed_wall), timeout=90,
                             what="the survivor's full scan of every account after the kill")
            taken = [e for e in b.events("round.start") if datetime.fromisoformat(e["time"]).timestamp() > killed_wall
                     and e["account"] in _accounts_of(a)]
            assert taken, "the survivor took the dead replica's accounts"
            takeover = datetime.fromisoformat(taken[0]["time"]).timestamp() - killed_wall
            await eventually(lambda: _all_archived(db_dsn, fresh), what="changes made after the kill archived")
            assert await b.stop() == 0
    for sid in sids:
        legacy = await query(db_dsn, "SELECT sid FROM twilio.legacy_messages WHERE account_sid = $1", sid)
        assert {r[0] for r in legacy} == {p["sid"] for p in emu.legacy_payloads(sid)}, sid
        comms = await query(db_dsn, "SELECT id FROM twilio.comms_messages WHERE account_sid = $1", sid)
        assert {r[0] for r in comms} == {p["id"] for p in emu.comms_payloads(sid)}, sid
    print(f"\nshare of replica a: {share:.0%}; takeover after kill -9: {takeover:.1f} s "
          f"(heartbeat timeout 3 s, {time.monotonic() - killed_at:.1f} s to an exact archive)")


def _rounds(svc: Service) -> int:
    return len(svc.events("round.start"))


def _accounts_of(svc: Service) -> set[str]:
    return {e["account"] for e in svc.events("round.start")}


async def _full_after(dsn: str, sids: set[str], after: float) -> bool:
    rows = await query(dsn, "SELECT DISTINCT account_sid, stream FROM twilio.scans WHERE kind = 'full' "
                            "AND status = 'complete' AND started_at > to_timestamp($1)", after)
    return {(a, s) for a in sids for s in STREAMS} <= {(r[0], r[1]) for r in rows}


async def _all_archived(dsn: str, fresh: dict[str, str]) -> bool:
    rows = await query(dsn, "SELECT sid FROM twilio.legacy_messages WHERE sid = ANY($1::text[])", list(fresh.values()))
    return len(rows) == len(fresh)


def _no_overlap(first: list[dict], second: list[dict], stream: str, account: str | None = None) -> None:
    """No scan of `stream` (of `account`) by one replica ran while the other was scanning it."""

    def spans(events: list[dict]) -> list[tuple[float, float]]:
        out, open_at = [], None
        for e in events:
            if e.get("stream") != stream or (account is not None and e.get("account") != account):
                continue
            at = datetime.fromisoformat(e["time"]).timestamp()
            if e["event"] == "scan.start":
                open_at = at
            elif e["event"] in ("scan.complete", "scan.stopped", "scan.failed") and open_at is not None:
                out.append((open_at, at))
                open_at = None
        if open_at is not None:
            out.append((open_at, float("inf")))
        return out

    for s1, e1 in spans(first):
        for s2, e2 in spans(second):
            assert e1 <= s2 or e2 <= s1, f"{account} {stream} scanned by both replicas at once"


async def test_probes_and_metrics_tell_an_operator_what_is_going_on(restartable_server):
    dsn = await pg.create_database(restartable_server.get_uri(), "archive")
    assert (await sync_cli("migrate", env=cli_env(None, dsn))).returncode == 0
    emu = emulator.Emulator(seed=25, comms_messages=500, legacy_messages=500, legacy_days=7,
                            faults=FaultProfile(p429=0.2, retry_after=0))
    async with emulator.serve(emu) as url:
        async with Service(cli_env(url, dsn), *FAST, "--metrics-per-account") as svc:
            assert await eventually(lambda: _status(svc, "/healthz", 200), what="/healthz") is not None
            await eventually(lambda: _status(svc, "/readyz", 200), what="ready once every stream was scanned")
            status, text = await svc.get("/metrics")
            assert status == 200
            families = {f.name: f for f in text_string_to_metric_families(text)}
            account = emulator.DEFAULT_ACCOUNT_SID

            def value(family: str, **labels: str) -> float:
                return sum(s.value for s in families[family].samples
                           if s.name.endswith(("_total", "_count")) or s.name == family
                           if all(s.labels.get(k) == v for k, v in labels.items()))

            for stream in STREAMS:
                assert value("twilio_archive_pages", account=account, stream=stream) > 0
                assert value("twilio_archive_records_fetched", account=account, stream=stream) >= 1
                assert value("twilio_archive_scan_duration_seconds", account=account, stream=stream, kind="full") >= 1
                assert value("twilio_archive_last_success_timestamp_seconds", account=account, stream=stream,
                             kind="full") > time.time() - 120
            assert value("twilio_archive_rows_written", stream="legacy_messages", change="inserted") == 500
            assert value("twilio_archive_api_responses", code="200") > 0
            assert value("twilio_archive_rate_limited") == value("twilio_archive_api_responses", code="429") > 0
            assert value("twilio_archive_retries", target="twilio", cause="429") > 0
            assert value("twilio_archive_hydrations", outcome="ok") > 0
            newest = max(parsing.rfc2822(p["date_created"]) for p in emu.legacy_payloads())

            async def age_is_current() -> bool:
                # The gauge is read every 0.5 s (--interval) from the archive: within a minute of now.
                nonlocal families
                families = {f.name: f for f in text_string_to_metric_families((await svc.get("/metrics"))[1])}
                age = (datetime.now(timezone.utc) - newest).total_seconds()
                return abs(value("twilio_archive_newest_record_age_seconds", stream="legacy_messages") - age) < 60

            await eventually(age_is_current, what="the newest record's age, from the archive")

            async def rounds_counted() -> bool:
                nonlocal families
                families = {f.name: f for f in text_string_to_metric_families((await svc.get("/metrics"))[1])}
                return value("twilio_archive_rounds") >= 1

            await eventually(rounds_counted, what="the replica's rounds counted")

            # The database goes away: not ready (with the reason), but alive; back: ready again.
            await anyio.to_thread.run_sync(pg.stop_server, restartable_server)
            try:
                await eventually(lambda: _status(svc, "/readyz", 503), what="not ready without a database")
                assert (await svc.get("/healthz"))[0] == 200
            finally:
                await anyio.to_thread.run_sync(pg.restart_server, restartable_server)
            await eventually(lambda: _status(svc, "/readyz", 200), timeout=60, what="ready again")

            # The log: JSON lines (events() parses each), stable event names, the counts of
            # every completed scan, every retry with its cause, and no secret anywhere.
            complete = svc.events("scan.complete")
            assert complete and all({"account", "stream", "kind", "seen", "inserted", "updated"} <= e.keys()
                                    for e in complete)
            assert any("429" in e["cause"] for e in svc.events("retry"))
            assert emulator.DEFAULT_AUTH_TOKEN not in svc.log_path.read_text()


async def _status(svc: Service, path: str, expected: int) -> bool:
    try:
        return (await svc.get(path))[0] == expected
    except OSError:
        return False


async def test_one_service_syncs_several_accounts_each_with_its_own_checkpoints(db_dsn, tmp_path):
    first = Account("AC" + "1" * 32, "token-one")
    second = Account("AC" + "2" * 32, "token-two")
    emu = emulator.Emulator(seed=26, comms_messages=200, legacy_messages=200, legacy_days=7, accounts=[first, second])
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f'[[account]]\nsid = "{first.sid}"\nauth_token_env = "ONE_TOKEN"\n\n'
                        f'[[account]]\nsid = "{second.sid}"\nauth_token_env = "TWO_TOKEN"\n')
    async with emulator.serve(emu) as url:
        env = cli_env(url, db_dsn, ONE_TOKEN=first.auth_token, TWO_TOKEN=second.auth_token,
                      TWILIO_ARCHIVE_ACCOUNTS=str(accounts))
        del env["TWILIO_ACCOUNT_SID"], env["TWILIO_AUTH_TOKEN"]
        async with Service(env, *FAST):
            await eventually(lambda: _full_per_account(db_dsn, {first.sid, second.sid}), what="both accounts scanned")
    for account in (first, second):
        sids = await query(db_dsn, "SELECT sid FROM twilio.legacy_messages WHERE account_sid = $1", account.sid)
        assert {r[0] for r in sids} == {p["sid"] for p in emu.legacy_payloads(account.sid)}
        ids = await query(db_dsn, "SELECT id FROM twilio.comms_messages WHERE account_sid = $1", account.sid)
        assert {r[0] for r in ids} == {p["id"] for p in emu.comms_payloads(account.sid)}


async def _full_per_account(dsn: str, accounts: set[str]) -> bool:
    rows = await query(dsn, "SELECT DISTINCT account_sid, stream FROM twilio.scans WHERE kind = 'full' "
                            "AND status = 'complete'")
    return {(r[0], r[1]) for r in rows} == {(a, s) for a in accounts for s in STREAMS}


async def test_wrong_credentials_stop_the_service_with_one_line(db_dsn):
    emu = emulator.Emulator(seed=27, comms_messages=10, legacy_messages=10)
    async with emulator.serve(emu) as url:
        result = await sync_cli("run", "--http-port", "0", env=cli_env(url, db_dsn, TWILIO_AUTH_TOKEN="wrong" * 4))
    err = result.stderr.decode()
    assert result.returncode == 1
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and "refused the credentials" in lines[0], err
    assert "Traceback" not in err and "wrong" * 4 not in err


@pytest.mark.parametrize("order", ["created", "sent-created", "sent-sid", "sent-nulls-last"])
async def test_the_service_reads_only_the_window_of_a_list_with_months_of_history(db_dsn, order):
    """`run` on a legacy list with 60 days of history behind the window, in each order: changes
    made while it runs reach the archive exactly; in the two likely orders every complete scan
    reads no more than its window's pages plus 4; in the others the service says why it reads more."""
    emu = emulator.Emulator(seed=27, comms_messages=0, legacy_messages=1_000, legacy_days=7,
                            legacy_history=5_000, legacy_history_days=60, legacy_order=order)
    async with emulator.serve(emu) as url:
        env = cli_env(url, db_dsn)
        async with Service(env, *FAST) as svc:
            await eventually(lambda: _full_legacy_scans(db_dsn, 1), what="a first full legacy scan")
            queued = emu.add_legacy_message(status="queued", date_sent=None, price=None)
            window = Window(datetime.now(timezone.utc) - timedelta(days=6), datetime.now(timezone.utc))
            inside = [p for p in emu.legacy_payloads() if p["date_sent"] and window.contains(_created(p))]
            redacted, deleted = inside[3]["sid"], inside[4]["sid"]
            emu.update_legacy_message(redacted, body="")
            emu.delete_legacy_message(deleted)
            await eventually(lambda: archived(db_dsn, "legacy_messages", "sid", queued["sid"]), what="new queued")
            emu.update_legacy_message(queued["sid"], status="sent", date_sent=rfc2822(now_ms()))
            await eventually(lambda: _has(db_dsn, "legacy_messages", "sid", queued["sid"], "status", "sent"))
            await eventually(lambda: _has(db_dsn, "legacy_messages", "sid", redacted, "body", ""))
            await eventually(lambda: _deleted(db_dsn, "legacy_messages", "sid", deleted), what="legacy deletion")
            done = await _full_legacy_scans(db_dsn, 0)
            await eventually(lambda: _full_legacy_scans(db_dsn, done + 1), what="a full scan after the changes")
            unbounded = svc.events("scan.unbounded")
        scans = await query(db_dsn, "SELECT kind, pages, list_order, window_start, window_end FROM twilio.scans "
                                    "WHERE stream = 'legacy_messages' AND status = 'complete' AND kind <> 'backfill'")
        last_full = max((s for s in scans if s["kind"] == "full"), key=lambda s: s["window_end"])
        expected = served(emu, "legacy_messages", Window(last_full["window_start"], last_full["window_end"]))
        rows = await query(db_dsn, "SELECT sid, raw FROM twilio.legacy_messages WHERE date_created >= $1 "
                                   "AND date_created < $2", last_full["window_start"], last_full["window_end"])
        assert {r[0]: json.loads(r["raw"]) for r in rows if r[0] != deleted} == expected
        if order in ("created", "sent-created"):
            for scan in scans:
                holds = len(served(emu, "legacy_messages", Window(scan["window_start"], scan["window_end"])))
                assert scan["pages"] <= -(-holds // 100) + 4, (scan["kind"], scan["pages"], holds)
            assert unbounded == []
        else:
            assert unbounded, "a scan that reads more than its window says why"
            found = {"sent-sid": "sent-nulls", "sent-nulls-last": "unordered"}[order]
            assert {s["list_order"] for s in scans} == {found}, "and records the order that made it"


def _created(payload: dict) -> datetime:
    from sync import parsing

    return parsing.rfc2822(payload["date_created"])


async def _full_legacy_scans(dsn: str, at_least: int) -> int:
    rows = await query(dsn, "SELECT count(*) FROM twilio.scans WHERE stream = 'legacy_messages' AND kind = 'full' "
                            "AND status = 'complete'")
    count = rows[0][0]
    return count if count >= at_least else 0
