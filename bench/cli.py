"""`python -m bench`: flags, the order of the phases, and cleaning up whatever happens."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from bench import BenchError
from sync import flags

DEFAULT_MESSAGES = 200_000
QUICK_MESSAGES = 20_000
MIN_MESSAGES = 5_000  # below a few pages per stream the resume phase cannot kill a run mid-way
DEFAULT_KILLS = 3  # the measurement: three kills during one backfill
LATENCY_MESSAGES = 50_000  # the target: a 7-day backfill of 50,000 + 50,000
MIN_LATENCY_MESSAGES = 1_000
DEFAULT_CONCURRENCY = 16  # the target: at most 16 requests in flight
DEFAULT_BASELINE = "37c0a68"  # bench/baseline.py: the release before issue 19
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def build_parser() -> argparse.ArgumentParser:
    parser = flags.Parser(
        prog="python -m bench",
        description="Benchmark twilio-archive against the built-in emulator (in its own process) and an "
        "embedded Postgres (or DATABASE_URL's server, where it creates and drops its own databases). "
        "Measures, in one run: the fetch limit (pages fetched and parsed, nothing typed or written), the "
        "write limit (the same pages typed where new and upserted, nothing fetched; new rows, then "
        "unchanged rows), "
        "`python -m sync backfill` from empty (records/s per stream and in all, requests, peak RSS), a "
        "rescan of the unchanged window (records/s, rows written: must be 0), and the requests a "
        "backfill killed with SIGKILL --kills times (at the emulator's gate) needs to finish, against a clean "
        "run's, and what each kill lost against the pages in hand.",
        epilog="Progress goes to stderr, the table to stdout. Needs psutil: pip install -e '.[bench]'.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--messages", type=_messages, default=DEFAULT_MESSAGES, metavar="N",
                      help=f"generated messages per API (default {DEFAULT_MESSAGES:,}; at least {MIN_MESSAGES:,})")
    size.add_argument("--quick", action="store_true",
                      help=f"a smoke run with {QUICK_MESSAGES:,} messages per API")
    parser.add_argument("--seed", type=int, default=0, help="seed of the emulator's data set (default 0)")
    parser.add_argument("--kills", type=_kills, default=DEFAULT_KILLS, metavar="K",
                        help=f"the resume phase kills the backfill K times (default {DEFAULT_KILLS}), each once the "
                             "emulator has answered 1/(K+1) of the clean run's requests, then runs it to the end")
    latency = parser.add_argument_group(
        "latency phase (issue 11)",
        "With --latency-ms, after the phases above (which stay at zero latency), a second emulator serves "
        "--latency-messages per API created over the last 7 days, the legacy list in date_sent order "
        "(sent-created). At 0 ms, then at each latency, set on the emulator for the whole step: the serial bound (each list read "
        "one page at a time following its next links, the lists side by side, nothing written), then "
        "`python -m sync backfill --concurrency C` into a fresh database: its time, records/s, requests, the "
        "emulator's peak of requests in flight, and the speedup over the serial bound.")
    latency.add_argument("--latency-ms", type=_latencies, default=[], metavar="N[,N...]",
                         help="milliseconds every API request waits before its answer, e.g. 500 or 500,250 "
                              "(default: no latency phase)")
    latency.add_argument("--concurrency", type=_concurrency, default=DEFAULT_CONCURRENCY, metavar="C",
                         help=f"the latency phase's `backfill --concurrency` (default {DEFAULT_CONCURRENCY}, the "
                              "issue's most requests in flight); the zero-latency phases keep the CLI's default")
    latency.add_argument("--latency-messages", type=_at_least(MIN_LATENCY_MESSAGES), default=LATENCY_MESSAGES,
                         metavar="N", help=f"messages per API in the latency phase (default {LATENCY_MESSAGES:,}, "
                                           f"the issue's target; at least {MIN_LATENCY_MESSAGES:,})")
    compare = parser.add_argument_group(
        "baseline (issue 19)",
        "After the change's rescan, the baseline release's own `python -m sync backfill` and rescan run against the "
        "same emulator and Postgres, for CPU seconds per record (client and Postgres) side by side. The baseline is "
        "built from this repository's git history (git archive, then a venv with it installed editable), cached "
        "under bench/results/baseline/; without git or the commit it is skipped with one line.")
    compare.add_argument("--baseline", default=DEFAULT_BASELINE, metavar="COMMIT",
                         help=f"the release to compare with (default {DEFAULT_BASELINE})")
    compare.add_argument("--no-baseline", dest="baseline", action="store_const", const=None,
                         help="skip the comparison")
    compare.add_argument("--dlt", action="store_true",
                         help="also load the legacy list with dlt's rest_api source into Postgres, beside our "
                              "`backfill --source legacy` (needs the extra: pip install -e '.[bench-dlt]')")
    parser.add_argument("--mms-share", type=flags.share, default=None, metavar="F",
                        help="also measure what media costs (issue 21): a legacy backfill with and without its "
                        "media lists, on an emulator whose messages carry media in this share, e.g. 0.1 "
                        "(default: no media phase; the other phases run with --no-media)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, metavar="PATH",
                        help="where to write every figure as JSON (default bench/results/latest.json)")
    return parser


def _whole(value: str) -> int:
    try:
        return int(value.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None


def _at_least(least: int):
    def parse(value: str) -> int:
        number = _whole(value)
        if number < least:
            raise argparse.ArgumentTypeError(f"must be at least {least:,}, got {number:,}")
        return number

    return parse


_messages = _at_least(MIN_MESSAGES)
_concurrency = _at_least(1)


def _latencies(value: str) -> list[int]:
    """"500" or "500,250": each a whole number of milliseconds, at least 1."""
    parts = [part.strip() for part in value.split(",")]
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not whole numbers of milliseconds: {value!r}") from None
    if not numbers or any(n < 1 for n in numbers):
        raise argparse.ArgumentTypeError(f"each latency must be at least 1 ms, got {value!r}")
    return numbers


def _kills(value: str) -> int:
    number = _whole(value)
    if not 1 <= number <= 9:
        raise argparse.ArgumentTypeError(f"must be between 1 and 9, got {number}")
    return number


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # SIGTERM cleans up like Ctrl-C: stop the children, drop the databases, remove the files.
    # Re-sent as SIGINT rather than raising here, so that inside the event loop asyncio's own
    # SIGINT handling cancels the work in order instead of a KeyboardInterrupt in a random task.
    signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        from bench import report

        results = run(args)
        print(report.table(results), flush=True)
        report.write_json(args.json, results)
    except KeyboardInterrupt:
        print("bench: interrupted; its processes are stopped and its files removed", file=sys.stderr)
        sys.exit(130)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        sys.exit(1)
    from bench.console import say

    say(f"figures written to {args.json}")


def run(args: argparse.Namespace):
    from bench import procs, report
    from bench.console import step

    machine = report.machine()  # before we load it: its load average says what else was running
    messages = QUICK_MESSAGES if args.quick else args.messages
    phase_seconds: dict[str, float] = {}
    with ExitStack() as stack:
        # Short on purpose: Postgres puts its unix socket in here (paths are limited to ~100 bytes).
        workdir = Path(tempfile.mkdtemp(prefix="twa-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        started = time.monotonic()
        with step(f"starting the emulator ({messages:,} messages per API) and Postgres"):
            emulator = stack.enter_context(procs.EmulatorProcess(messages, args.seed, workdir))
            server = stack.enter_context(procs.postgres(workdir))
            running = emulator.ready()
        phase_seconds["setup"] = time.monotonic() - started
        databases = procs.Databases(server.dsn)
        if not server.embedded:  # an embedded server goes with its data; a real one keeps what we leave
            stack.callback(_drop_all, databases)
        results = anyio.run(_measure, args, messages, running, server, databases, workdir, phase_seconds)
        results.machine = machine
        return results


def _drop_all(databases) -> None:
    try:
        anyio.run(databases.drop_all)
    except (BenchError, OSError) as exc:
        print(f"bench: could not drop its databases {databases.prefix}_*: {exc}", file=sys.stderr)


async def _measure(args, messages, running, server, databases, workdir, phase_seconds):
    from bench import limits, report, runs, usage
    from bench.console import say, step
    from sync import budget, models, worker
    from sync.config import DEFAULT_CONCURRENCY as DEFAULT_CLI_CONCURRENCY

    meter = usage.Meter(running.pid, server.pid)
    cpu: dict[str, usage.PhaseCpu] = {}

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        """A step announced on stderr, whose wall time goes into the figures."""
        started = time.monotonic()
        with step(name):
            try:
                yield
            finally:
                phase_seconds[name] = time.monotonic() - started

    with timed("migrate"):
        await databases.prepare()
        version = await databases.server_version()

    # One fixed window for every phase: the whole legacy retention, up to a second after the
    # newest generated record. A fixed --until also lets the killed backfill resume.
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    since = until - models.LEGACY_RETENTION
    window = models.default_window(until, since, until)
    # --no-media: these figures stay those of the list alone, comparable with the releases before
    # media (its cost is the media phase's, with --mms-share).
    runner = runs.Runner(running, _rfc3339(since), _rfc3339(until), workdir, ("--no-media",))

    with timed("fetch limit"):
        before, t0 = meter.sample(), time.perf_counter()
        fetch = await limits.fetch_limit(running, window)
        cpu["fetch limit"] = usage.between(before, meter.sample(), time.perf_counter() - t0)
    say(f"fetch limit: {fetch.records:,} records in {fetch.seconds:.1f} s = {fetch.rate:,.0f}/s")

    dsn = await databases.fresh("write")
    with timed("write limit"):
        write_new, cpu["write limit (new)"] = await limits.write_limit(running, window, dsn, "bench-write", meter)
        say(f"write limit, new rows: {write_new.records:,} records in {write_new.seconds:.1f} s "
            f"= {write_new.rate:,.0f}/s")
        write_same, cpu["write limit (unchanged)"] = await limits.write_limit(running, window, dsn, "bench-rewrite",
                                                                              meter)
        say(f"write limit, unchanged rows: {write_same.records:,} records in {write_same.seconds:.1f} s "
            f"= {write_same.rate:,.0f}/s")
    await databases.drop(dsn)

    clean_dsn = await databases.fresh("backfill")
    with timed("backfill"):
        before = meter.sample()
        backfill = await runs.backfill(runner, clean_dsn)
        cpu["backfill"] = usage.between(before, meter.sample(), backfill.exit.seconds, child_cpu=backfill.exit.cpu_seconds)
    say(f"backfill: {backfill.records:,} records in {backfill.span_seconds:.1f} s = {backfill.rate:,.0f}/s")

    with timed("rescan"):
        before = meter.sample()
        rescan = await runs.rescan(runner, clean_dsn)
        cpu["rescan"] = usage.between(before, meter.sample(), rescan.exit.seconds, child_cpu=rescan.exit.cpu_seconds)
    say(f"rescan: {rescan.records:,} records in {rescan.span_seconds:.1f} s = {rescan.rate:,.0f}/s, "
        f"{rescan.rows_written:,} rows written")

    compared = None
    if args.baseline:
        from bench import baseline

        with timed("baseline"):
            compared = await baseline.run(args.baseline, runner, databases, meter)

    dlt_compared = None
    if args.dlt:
        from bench import dlt_rest

        if not dlt_rest.available():
            say("dlt: skipped: not installed (pip install -e '.[bench-dlt]')")
        else:
            with timed("dlt rest_api, legacy list"):
                dlt_compared = await dlt_rest.measure(runner, databases, meter)
            say(f"dlt: {dlt_compared.dlt_rows:,} rows at {dlt_compared.dlt_rate:,.0f}/s; ours (legacy only) "
                f"{dlt_compared.ours_rows:,} rows at {dlt_compared.ours_rate:,.0f}/s")

    resume_dsn = await databases.fresh("resume")
    with timed("resume"):
        before = meter.sample()
        in_hand = budget.PAGES_IN_HAND * DEFAULT_CLI_CONCURRENCY  # the zero-latency runs keep the CLI's default
        resume = await runs.resume(runner, resume_dsn, backfill, clean_dsn, args.kills, in_hand)
        cpu["resume (every run)"] = usage.between(
            before, meter.sample(), resume.seconds,
            child_cpu=sum(k.exit.cpu_seconds for k in resume.kills) + resume.second.exit.cpu_seconds)
    say(f"resume: {resume.requests:,} requests vs {resume.clean_requests:,} for the clean run, "
        f"{resume.lost_per_kill:.1f} lost per kill (at most {in_hand} in hand)")

    latency_phase = None
    if args.latency_ms:
        from bench import latency

        latency_phase = await latency.measure(args.latency_ms, args.latency_messages, args.concurrency, args.seed,
                                              server, databases, workdir, timed, cpu)

    media_phase = None
    if args.mms_share is not None:
        from bench import media

        media_phase = await media.measure(args.mms_share, messages, args.seed, _rfc3339(since), _rfc3339(until),
                                          databases, workdir, timed)

    source = ("emulator (GET /_emulator/faults)" if backfill.emulator_requests is not None else
              "pages in twilio.scans (the emulator reports no request count; a page fetched but never "
              "saved is not counted)")
    config = {"messages": messages, "seed": args.seed, "since": _rfc3339(since), "until": _rfc3339(until),
              "postgres": f"{version} ({'embedded' if server.embedded else 'DATABASE_URL'})",
              "page_size": worker.PAGE_SIZE, "kills": args.kills}
    return report.Results(config=config, machine={}, fetch=fetch, write_new=write_new,
                          write_unchanged=write_same, backfill=backfill, rescan=rescan, resume=resume, cpu=cpu,
                          phase_seconds=phase_seconds, requests_source=source, latency=latency_phase,
                          baseline=compared, dlt=dlt_compared, media=media_phase)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
