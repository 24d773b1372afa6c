"""The benchmark of twilio-archive (issue 4): how close a backfill gets to its own limits.

One command, `python -m bench`, starts the built-in Twilio emulator in its own process and an
embedded Postgres (or uses DATABASE_URL), then measures in one run: the fetch limit (pages
fetched and parsed, nothing written), the write limit (the same pages upserted, nothing
fetched), the real `python -m sync backfill` from empty, a rescan of the unchanged window, and
the cost of resuming a backfill killed three times (each kill against the pages in hand), and the same backfill and rescan by the baseline
release, built from git, for CPU per record side by side (bench/baseline.py; with --dlt, dlt's
rest_api source on the legacy list too). It prints a table and writes every figure as JSON so runs
can be compared.
"""


class BenchError(Exception):
    """Something the benchmark needs failed; shown as one line, exit status 1."""
