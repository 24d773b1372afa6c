"""The issue's figures for many accounts on many replicas, against the built-in emulator with N
subaccounts answering every request after a latency, and a private Postgres:

    .venv/bin/python -m tests.accounts_bench [--subaccounts 50] [--latency-ms 250] [--messages 200]

1. one `run --subaccounts` replica: the time until every account's three streams completed a full
   scan (accounts archived per minute) and the replica's peak RSS;
2. two replicas on a fresh database: the same, and each replica's share of the rounds;
3. two replicas on a fresh database again, one killed (-9) in the middle of its first rounds: the
   time until the survivor starts each account the dead one had in flight (its heartbeat timeout
   is --heartbeat-seconds), and until every account is archived.

Times run from the first round's start (a replica's own start-up, about a second of imports, is
not the queue's).

Hydration is off (`--no-hydrate`): it fetches v1 messages one by one and would measure that, not
the sharing of accounts. Not a test: it prints the figures, and asserts nothing."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from datetime import datetime

import anyio
import asyncpg
import psutil

from sync import database, emulator
from sync.config import Settings
from sync.models import STREAMS
from tests import pg
from tests.cli import cli_env, sync_cli
from tests.service import Service

ARGS = ("--interval", "30", "--full-interval", "3600", "--no-hydrate", "--discovery-interval", "600")


async def all_full(dsn: str, sids: set[str]) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT DISTINCT account_sid, stream FROM twilio.scans WHERE kind = 'full' "
                                "AND status = 'complete'")
    finally:
        await conn.close()
    return {(a, s) for a in sids for s in STREAMS} <= {(r[0], r[1]) for r in rows}


async def fresh_database(server: str, name: str) -> str:
    dsn = await pg.create_database(server, name)
    assert (await sync_cli("migrate", env=cli_env(None, dsn))).returncode == 0
    return dsn


async def until_all_full(dsn: str, sids: set[str], replicas: list[Service], peak: list[int]) -> float:
    """Seconds from the first round's start to every account's three full scans complete."""
    while not await all_full(dsn, sids):
        for svc in replicas:
            if svc.proc is not None and svc.proc.returncode is None:
                peak[0] = max(peak[0], psutil.Process(svc.proc.pid).memory_info().rss)
        await anyio.sleep(0.2)
    done = time.time()
    first = min(datetime.fromisoformat(e["time"]).timestamp() for svc in replicas for e in rounds(svc))
    return done - first


def in_flight(svc: Service) -> set[str]:
    """The accounts whose last round in `svc`'s log has not completed all three scans."""
    started: dict[str, float] = {}
    complete: dict[str, set[str]] = {}
    for e in svc.events():
        if e.get("event") == "round.start":
            started[e["account"]] = datetime.fromisoformat(e["time"]).timestamp()
            complete[e["account"]] = set()
        elif e.get("event") == "scan.complete" and e.get("account") in complete:
            complete[e["account"]].add(e["stream"])
    return {sid for sid in started if complete[sid] != set(STREAMS)}


def rounds(svc: Service) -> list[dict]:
    return svc.events("round.start")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subaccounts", type=int, default=50)
    parser.add_argument("--latency-ms", type=int, default=250)
    parser.add_argument("--messages", type=int, default=200, help="messages per API of each subaccount")
    parser.add_argument("--heartbeat-seconds", type=float, default=10.0)
    parser.add_argument("--accounts-at-once", type=int, default=8, help="run's flag (default 8, run's own)")
    args = parser.parse_args()
    settings = Settings.from_env()
    server = await database.resolve_dsn(settings)
    server = server.rsplit("/", 1)[0] + "/postgres" if "?" not in server else \
        server.split("?")[0].rsplit("/", 1)[0] + "/postgres?" + server.split("?")[1]
    emu = emulator.Emulator(seed=50, comms_messages=args.messages, legacy_messages=args.messages, legacy_days=7,
                            subaccounts=args.subaccounts, subaccount_messages=args.messages,
                            faults=emulator.FaultProfile(latency=args.latency_ms / 1000))
    sids = {emulator.DEFAULT_ACCOUNT_SID} | {p.sid for p in emu.directory.subaccounts()}
    run_args = (*ARGS, "--heartbeat-seconds", str(args.heartbeat_seconds), "--accounts-at-once",
                str(args.accounts_at_once))
    print(f"{len(sids)} accounts, {args.messages} messages per API each, {args.latency_ms} ms a request; "
          f"{os.cpu_count()} cores", flush=True)
    async with emulator.serve(emu) as url:
        for n, kill in ((1, False), (2, False), (2, True)):
            dsn = await fresh_database(server, pg.random_name(f"bench{n}"))
            env = cli_env(url, dsn, TWILIO_ARCHIVE_SUBACCOUNTS="true")
            replicas = [Service(env, *run_args) for _ in range(n)]
            peak = [0]
            for svc in replicas:
                await svc.start()
            try:
                if kill:
                    victim, survivor = replicas
                    while len(rounds(victim)) < 5:
                        await anyio.sleep(0.02)
                    killed = time.time()
                    victim.signal(signal.SIGKILL)
                    await victim.proc.wait()
                    orphans = in_flight(victim)
                me, cpu_before = psutil.Process(), sum(psutil.Process().cpu_times()[:2])
                wall_before = time.monotonic()
                seconds = await until_all_full(dsn, sids, replicas, peak)
                cpu = {"emulator": sum(me.cpu_times()[:2]) - cpu_before}
                for i, svc in enumerate(replicas):
                    if svc.proc.returncode is None:
                        cpu[f"replica {i + 1}"] = sum(psutil.Process(svc.proc.pid).cpu_times()[:2])
                busy = ", ".join(f"{k} {v / (time.monotonic() - wall_before):.0%}" for k, v in cpu.items())
                counts = [len(rounds(svc)) for svc in replicas]
                what = "with one killed" if kill else ""
                print(f"{n} replica(s) {what}: every account archived in {seconds:.1f} s = "
                      f"{len(sids) / seconds * 60:.0f} accounts/min; rounds per replica {counts}"
                      f" (shares {', '.join(f'{c / max(sum(counts), 1):.0%}' for c in counts)}); "
                      f"peak RSS of a replica {peak[0] / 2**20:.0f} MB; CPU of one core: {busy}", flush=True)
                if kill:
                    taken = {}
                    for e in rounds(survivor):
                        at = datetime.fromisoformat(e["time"]).timestamp()
                        if e["account"] in orphans and at > killed:
                            taken.setdefault(e["account"], at - killed)
                    print(f"kill -9 with {len(orphans)} rounds in flight: the survivor started them "
                          f"{min(taken.values()):.1f} to {max(taken.values()):.1f} s later "
                          f"(heartbeat timeout {args.heartbeat_seconds:.0f} s)" if taken else
                          "kill -9: the dead replica had no round in flight", flush=True)
            finally:
                for svc in replicas:
                    await svc.stop()
                    svc.log_path.unlink(missing_ok=True)
            await pg.drop_database(server, dsn.split("?")[0].rsplit("/", 1)[1])


if __name__ == "__main__":
    sys.exit(anyio.run(main))
