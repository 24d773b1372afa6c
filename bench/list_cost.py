"""`python -m bench.list_cost`: what a legacy scan costs on an account with months of history.

A real account's legacy list keeps 400 days, so the 7-day window sits on top of far more
history. For each order the list may be served in, this serves such a list from the built-in
emulator over HTTP, and runs into an embedded Postgres (or DATABASE_URL's server, in databases of
its own) the scans `run` makes: a full scan of the 7-day window and a look-back of an hour. It
prints their list requests and the records they read outside the window, and what an hour of
`run` at its defaults (one full scan, 59 look-backs) asks of the legacy list, beside the whole
list that every pass read before the scan plan (sync/plan/)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from bench import procs
from sync import emulator, machinery, sources, worker
from sync.config import Secret, TwilioSettings
from sync.http import TwilioClient
from sync.models import LEGACY_MESSAGES, Window, default_window
from sync.progress import Progress
from sync.store import Store

LEGACY = sources.BY_STREAM[LEGACY_MESSAGES]
LOOK_BACKS_PER_HOUR = 59  # run's defaults: --interval 60, --full-interval 3600, --lookback 3600


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.list_cost", description=__doc__.split("\n\n")[1])
    parser.add_argument("--recent", type=int, default=5_000, metavar="N", help="messages in the last 7 days (default 5,000)")
    parser.add_argument("--history", type=int, default=200_000, metavar="N",
                        help="messages behind the window, over 400 days (default 200,000)")
    parser.add_argument("--orders", default=",".join(emulator.LEGACY_ORDERS), metavar="A,B",
                        help=f"list orders to measure (default all: {', '.join(emulator.LEGACY_ORDERS)})")
    return parser


async def scan(store: Store, client: TwilioClient, account_sid: str, kind: str, window: Window) -> worker.ScanResult:
    now = datetime.now(UTC)
    opened, _ = await worker.open_scan(store, LEGACY, account_sid, kind, window, fixed_end=False,
                                       page_size=worker.PAGE_SIZE, now=now)
    return await worker.run_scan(store, client, LEGACY, opened, Progress(), resumed=False,
                                 options=worker.ScanOptions(keep_seen=kind == "full"))


async def measure(order: str, args: argparse.Namespace, databases: procs.Databases) -> dict:
    emu = emulator.Emulator(seed=1, comms_messages=0, legacy_messages=args.recent, legacy_days=7,
                            legacy_history=args.history, legacy_history_days=400, legacy_order=order)
    dsn = await databases.fresh(order.replace("-", "_"))
    async with emulator.serve(emu) as url, await Store.connect(dsn) as store:
        twilio = TwilioSettings(account_sid=emulator.DEFAULT_ACCOUNT_SID, username=emulator.DEFAULT_ACCOUNT_SID,
                                password=Secret(emulator.DEFAULT_AUTH_TOKEN), comms_base_url=url, api_base_url=url)
        async with machinery.twilio_client(twilio) as client:
            full = await scan(store, client, twilio.account_sid, "full", default_window(datetime.now(UTC), None, None))
            now = datetime.now(UTC)
            recent = await scan(store, client, twilio.account_sid, "recent", Window(now - timedelta(hours=1), now))
    await databases.drop(dsn)
    listed = len(emu.legacy_payloads())
    return {"order": order, "found": full.order, "listed": listed, "full": full.pages, "full_outside": full.outside,
            "recent": recent.pages, "hour": full.pages + LOOK_BACKS_PER_HOUR * recent.pages,
            "before": -(-listed // worker.PAGE_SIZE) * (1 + LOOK_BACKS_PER_HOUR)}


async def main_async(args: argparse.Namespace) -> list[dict]:
    workdir = Path(tempfile.mkdtemp(prefix="twa-cost-"))
    try:
        with procs.postgres(workdir) as server:
            databases = procs.Databases(server.dsn)
            await databases.prepare()
            try:
                return [await measure(order, args, databases) for order in args.orders.split(",")]
            finally:
                await databases.drop_all()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    args = build_parser().parse_args()
    unknown = set(args.orders.split(",")) - set(emulator.LEGACY_ORDERS)
    if unknown:
        raise SystemExit(f"python -m bench.list_cost: error: unknown order(s) {', '.join(sorted(unknown))}")
    rows = anyio.run(main_async, args)
    print(f"legacy list: {args.recent:,} messages in the last 7 days, {args.history:,} behind them over 400 days; "
          f"page size {worker.PAGE_SIZE}")
    print(f"{'served in order':<16} {'found':<13} {'full scan':>9} {'outside':>8} {'look-back':>9} "
          f"{'per hour':>9} {'before/hour':>11}")
    for r in rows:
        print(f"{r['order']:<16} {r['found']:<13} {r['full']:>9,} {r['full_outside']:>8,} {r['recent']:>9,} "
              f"{r['hour']:>9,} {r['before']:>11,}")
    print("list requests; 'per hour' is one full scan and 59 look-backs (run's defaults); 'before' read the whole "
          "list on every pass")


if __name__ == "__main__":
    main()
