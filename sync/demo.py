"""`python -m sync demo`: with no configuration, the embedded Postgres, the built-in emulator and
one backfill of the last 7 days into the demo's own database, then two example queries over
what it archived. Never a real archive: the demo's made-up messages stay in twilio_archive_demo."""

from __future__ import annotations

from datetime import datetime, timezone

from sync import backfill, database, errors, models, report
from sync.config import Settings
from sync.sql import samples


async def run(messages: int, concurrency: int) -> None:
    """The demo, from an empty database to the example queries and what to do next."""
    from sync import emulator
    from sync.config import TwilioSettings, Secret

    if messages < 1:
        raise errors.ConfigError("--messages must be at least 1")
    settings = Settings.from_env()
    print("starting the embedded Postgres ...", flush=True)
    # Always the embedded server, even with DATABASE_URL set: the demo's made-up messages must
    # never land in a real archive.
    server_dsn = await database.embedded_server_dsn(settings)
    dsn = await database.ensure_database(server_dsn, database.DEMO_DATABASE, fresh=True)
    await database.migrate(dsn)
    print(f"generating {messages:,} messages per API in the built-in Twilio emulator ...", flush=True)
    # The legacy list in the order Twilio documents (date_sent newest first, the never-sent in a
    # block of their own), which the scan plan bounds: a first run shows no warning about our own data.
    emu = emulator.Emulator(seed=0, comms_messages=messages, legacy_messages=messages, legacy_days=7,
                            legacy_order="sent-created")
    async with emulator.serve(emu, host="127.0.0.1", port=0) as base_url:
        twilio = TwilioSettings(account_sid=emulator.DEFAULT_ACCOUNT_SID, username=emulator.DEFAULT_ACCOUNT_SID,
                                password=Secret(emulator.DEFAULT_AUTH_TOKEN), comms_base_url=base_url,
                                api_base_url=base_url, concurrency=concurrency)
        now = datetime.now(timezone.utc)
        print(f"backfilling the last 7 days from {base_url} ...", flush=True)
        results, seconds, media_run = await backfill.run(dsn, twilio, models.STREAMS,
                                                         models.default_window(now, None, None), fixed_end=False,
                                                         now=now)
    report.print_results(results, seconds, media_run)
    await _show_examples(dsn)
    print(f"""
what next:
  look around in it:   python -m sync psql --demo      (or: python -m sync status --demo)
                       {database.demo_location(settings)}
  archive an account:  export TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=...
                       python -m sync migrate && python -m sync backfill && python -m sync psql
                       (into DATABASE_URL=postgresql://... if set, else database {database.DATABASE} of the
                       same embedded Postgres; `python -m sync run` keeps it current)""")


async def _show_examples(dsn: str) -> None:
    """The rows archived, then each example query with its result."""
    from sync.store import Store

    async with await Store.connect(dsn) as store:
        counts = {t: await store.status.count(t) for t in models.STREAMS}
        rows = await store.fetch(samples.BY_SOURCE_AND_STATUS)
        overview = await store.fetch(samples.DAILY_OVERVIEW)
    print("\narchived rows: " + ", ".join(f"twilio.{t} {n:,}" for t, n in counts.items()))
    print(f"\nan example query over the view that unifies both APIs:\n\n{samples.BY_SOURCE_AND_STATUS};\n")
    print(f"{'source':<8} {'status':<20} {'messages':>9} {'price':>12}")
    for r in rows:
        price = "" if r["price"] is None else f"{r['price']:.5f}"
        print(f"{r['source']:<8} {str(r['status']):<20} {r['messages']:>9,} {price:>12}")
    print(f"\nand one of the analyst views (docs/analysts.md), a daily overview:\n\n{samples.DAILY_OVERVIEW};\n")
    _print_overview(overview)


def _print_overview(overview: list) -> None:
    print(f"{'day':<10} {'source':<6} {'unit':<4} {'messages':>8} {'out':>6} {'in':>6} {'deliv.':>6} {'read':>5}"
          f" {'undel.':>6} {'failed':>6} {'spend':>10} {'median s':>8}")
    for r in overview:
        spend = "" if r["spend"] is None else f"{r['spend']:.4f}"
        median = "" if r["median_seconds_to_delivered"] is None else f"{r['median_seconds_to_delivered']:.0f}"
        print(f"{str(r['day']):<10} {r['source']:<6} {r['price_unit'] or '':<4} {r['messages']:>8,} {r['outbound']:>6,}"
              f" {r['inbound']:>6,} {r['delivered']:>6,} {r['read']:>5,} {r['undelivered']:>6,} {r['failed']:>6,}"
              f" {spend:>10} {median:>8}")
