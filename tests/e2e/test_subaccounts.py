"""`backfill --subaccounts` and `run --subaccounts` as real processes against the emulator and a real
Postgres: every active and suspended subaccount archived exactly, closed ones reported and
skipped, one created while `run` runs archived within a discovery interval, an account failing
its own way never stopping the others, and no subaccount's token anywhere it could leak."""

from __future__ import annotations

import anyio
import pytest

from sync import emulator
from sync.emulator import Emulator
from sync.models import STREAMS
from tests.cli import cli_env, sync_cli
from tests.service import FAST, Service, eventually, query

pytestmark = pytest.mark.timeout(240)


async def assert_account_archived(dsn: str, emu: Emulator, sid: str) -> None:
    """The account's three lists in the archive equal what the emulator serves for it."""
    legacy = await query(dsn, "SELECT sid FROM twilio.legacy_messages WHERE account_sid = $1", sid)
    assert {r[0] for r in legacy} == {p["sid"] for p in emu.legacy_payloads(sid)}, sid
    comms = await query(dsn, "SELECT id FROM twilio.comms_messages WHERE account_sid = $1", sid)
    assert {r[0] for r in comms} == {p["id"] for p in emu.comms_payloads(sid)}, sid
    ops = await query(dsn, "SELECT id FROM twilio.comms_operations WHERE account_sid = $1", sid)
    assert {r[0] for r in ops} == {p["id"] for p in emu.operation_payloads(sid)}, sid


async def archived_accounts(dsn: str) -> set[str]:
    rows = await query(dsn, "SELECT DISTINCT account_sid FROM twilio.scans")
    return {r[0] for r in rows}


async def database_text(dsn: str) -> str:
    """Every row of every table of the archive, as text."""
    tables = await query(dsn, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'twilio' "
                              "AND table_type = 'BASE TABLE'")
    parts = []
    for (table,) in tables:
        rows = await query(dsn, f"SELECT t::text FROM twilio.{table} t")
        parts.extend(r[0] for r in rows)
    return "\n".join(parts)


def tokens_of(emu: Emulator) -> list[str]:
    return [emu.accounts[p.sid].auth_token for p in emu.directory.subaccounts()]


async def test_backfill_archives_every_active_and_suspended_subaccount_and_skips_the_closed(db_dsn):
    """backfill --subaccounts: the main account and every active or suspended subaccount exactly;
    the closed one reported, skipped and marked closed; no token in output or database."""
    emu = emulator.Emulator(seed=41, comms_messages=60, legacy_messages=60, legacy_days=7, subaccounts=4,
                            subaccount_messages=40)
    subs = emu.directory.subaccounts()
    emu.directory.set_status(subs[1].sid, "suspended")
    emu.directory.set_status(subs[2].sid, "closed")
    async with emulator.serve(emu) as url:
        result = await sync_cli("backfill", "--subaccounts", "--page-size", "25", env=cli_env(url, db_dsn))
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    for sid in [emulator.DEFAULT_ACCOUNT_SID, subs[0].sid, subs[1].sid, subs[3].sid]:
        await assert_account_archived(db_dsn, emu, sid)
    assert subs[2].sid not in await archived_accounts(db_dsn)
    assert f"account {subs[2].sid}: closed" in out
    statuses = dict((r[0], r[1]) for r in await query(db_dsn, "SELECT account_sid, status FROM twilio.accounts"))
    assert statuses[subs[2].sid] == "closed" and statuses[subs[1].sid] == "suspended"
    assert statuses[emulator.DEFAULT_ACCOUNT_SID] == "active"
    stored = await database_text(db_dsn)
    for token in tokens_of(emu):
        assert token not in out and token not in err and token not in stored
    status = (await sync_cli("status", env=cli_env(None, db_dsn))).stdout.decode()
    rows = await query(db_dsn, "SELECT count(*) FROM twilio.legacy_messages WHERE account_sid = $1", subs[1].sid)
    assert f"{subs[2].sid} 'Customer 3': closed; 0 rows" in status, status
    assert f"{subs[1].sid} 'Customer 2': suspended; " in status and "last complete scan of every stream 20" in status
    assert rows[0][0] > 0


async def test_an_account_refused_is_reported_and_the_others_are_archived(db_dsn, tmp_path):
    """An accounts file naming an account with a wrong token, with --subaccounts: that account
    fails in one line, every listed one is archived, and the exit status says something failed."""
    emu = emulator.Emulator(seed=42, comms_messages=20, legacy_messages=20, legacy_days=7, subaccounts=2,
                            subaccount_messages=20)
    stranger = "AC" + "7" * 32
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f'[[account]]\nsid = "{stranger}"\nauth_token_env = "STRANGER_TOKEN"\n')
    async with emulator.serve(emu) as url:
        result = await sync_cli("backfill", "--subaccounts", "--accounts", str(accounts),
                                env=cli_env(url, db_dsn, STRANGER_TOKEN="not-a-token"))
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 1, out + err
    assert f"account {stranger}: failed" in out and "Traceback" not in err, err
    for p in emu.directory.subaccounts():
        await assert_account_archived(db_dsn, emu, p.sid)


async def _complete_full(dsn: str, sids: set[str]) -> bool:
    rows = await query(dsn, "SELECT DISTINCT account_sid, stream FROM twilio.scans WHERE kind = 'full' "
                            "AND status = 'complete'")
    return {(a, s) for a in sids for s in STREAMS} <= {(r[0], r[1]) for r in rows}


async def test_run_archives_subaccounts_and_follows_new_and_closed_ones(db_dsn):
    """run --subaccounts: every active and suspended subaccount archived; one created while it
    runs is archived within a discovery interval; one closed stops being scanned; no token in
    its logs, metrics or the database."""
    emu = emulator.Emulator(seed=43, comms_messages=40, legacy_messages=40, legacy_days=7, subaccounts=3,
                            subaccount_messages=30)
    subs = emu.directory.subaccounts()
    emu.directory.set_status(subs[0].sid, "suspended")
    emu.directory.set_status(subs[2].sid, "closed")
    scanned = {emulator.DEFAULT_ACCOUNT_SID, subs[0].sid, subs[1].sid}
    async with emulator.serve(emu) as url:
        env = cli_env(url, db_dsn, TWILIO_ARCHIVE_SUBACCOUNTS="true")
        async with Service(env, *FAST, "--discovery-interval", "1") as svc:
            await eventually(lambda: _complete_full(db_dsn, scanned), timeout=90, what="every open account scanned")
            created = emu.directory.create("Newcomer", messages=25)
            await eventually(lambda: _complete_full(db_dsn, {created.sid}), timeout=60, what="the newcomer scanned")
            emu.directory.set_status(subs[1].sid, "closed")
            await eventually(lambda: _stopped(svc, subs[1].sid), timeout=30, what="the closed account stopped")
            _, metrics = await svc.get("/metrics")
            assert await svc.stop() == 0
            events = svc.events()
            logged = svc.log_path.read_text()
    assert subs[2].sid not in await archived_accounts(db_dsn)
    for sid in scanned | {created.sid}:
        await assert_account_archived(db_dsn, emu, sid)
    assert any(e.get("event") == "account.closed" and e.get("account") == subs[2].sid for e in events)
    worked = await query(db_dsn, "SELECT account_sid, last_worked_by FROM twilio.accounts")
    holder = next(e["holder"] for e in events if e.get("event") == "service.start")
    assert {r[0] for r in worked if r[1] == holder} == scanned | {created.sid}, "status names the replica of each round"
    stored = await database_text(db_dsn)
    for token in tokens_of(emu):
        assert token not in logged and token not in metrics and token not in stored


async def _stopped(svc: Service, sid: str) -> bool:
    return any(e.get("account") == sid and e.get("closed") for e in svc.events("round.dropped"))


async def test_a_backfill_started_on_two_machines_shares_the_accounts(db_dsn):
    """Two `backfill --subaccounts` at once take their accounts from one queue: each passes some,
    together every account once, and the archive is exact."""
    emu = emulator.Emulator(seed=44, comms_messages=100, legacy_messages=100, legacy_days=7, subaccounts=7,
                            subaccount_messages=100, faults=emulator.FaultProfile(latency=0.05))
    sids = [emulator.DEFAULT_ACCOUNT_SID] + [p.sid for p in emu.directory.subaccounts()]
    outputs: list[str] = []
    async with emulator.serve(emu) as url:
        env = cli_env(url, db_dsn)

        async def one() -> None:
            result = await sync_cli("backfill", "--subaccounts", "--accounts-at-once", "2", "--page-size", "50",
                                    env=env)
            assert result.returncode == 0, result.stderr.decode()
            outputs.append(result.stdout.decode())

        # Both start with their listing held at the gate, so neither is done before the other offers.
        async with anyio.create_task_group() as tg:
            emu.faults.hold_after(0)
            tg.start_soon(one)
            tg.start_soon(one)
            while emu.faults.held < 2:
                await anyio.sleep(0.01)
            emu.faults.release()
    passed = [{sid for sid in sids if f"account {sid}\n" in out} for out in outputs]
    assert passed[0] and passed[1], "each machine passed some accounts"
    assert passed[0] | passed[1] == set(sids) and not passed[0] & passed[1]
    for sid in sids:
        await assert_account_archived(db_dsn, emu, sid)


@pytest.mark.parametrize("credentials", ["auth token", "API key"])
async def test_each_subaccounts_media_is_read_with_the_credentials_its_api_accepts(db_dsn, credentials):
    """backfill --subaccounts archives the media of every account's messages exactly: read as the
    message's own account, with the main account's token (which may act for a subaccount on the
    2010 API) or, when the main credentials are an API key (which may not), the subaccount's own."""
    emu = emulator.Emulator(seed=43, comms_messages=20, legacy_messages=40, legacy_days=7, subaccounts=2,
                            subaccount_messages=40, mms_share=0.5)
    async with emulator.serve(emu) as url:
        env = cli_env(url, db_dsn)
        if credentials == "API key":
            del env["TWILIO_AUTH_TOKEN"]
            env.update(TWILIO_API_KEY=emulator.DEFAULT_API_KEY_SID, TWILIO_API_SECRET=emulator.DEFAULT_API_KEY_SECRET)
        result = await sync_cli("backfill", "--subaccounts", "--source", "legacy", env=env)
    assert result.returncode == 0, result.stderr.decode()
    for sid in [emulator.DEFAULT_ACCOUNT_SID] + [p.sid for p in emu.directory.subaccounts()]:
        served = {item["sid"] for m in emu.legacy_payloads(sid) for item in emu.media.items(m)}
        rows = await query(db_dsn, "SELECT sid FROM twilio.legacy_media WHERE account_sid = $1", sid)
        assert served and {r[0] for r in rows} == served, sid
