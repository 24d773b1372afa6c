"""A third baseline (issue 19): dlt's `rest_api` source reading the emulator's legacy list into Postgres.

dlt is what a team would reach for instead of this project: a generic REST loader that follows
`next_page_uri` and merges on `sid`. The bench runs it in a child process (`python -m
bench.dlt_rest`, so that wait4 gives its CPU and its state stays in the bench's work directory)
and, beside it, our own `backfill --source legacy` into a fresh database, for records/s and CPU
per record of the legacy list alone. It needs the optional extra `bench-dlt`
(`pip install -e '.[bench-dlt]'`); without dlt it is skipped with one line."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bench import BenchError, procs, runs, usage

LEGACY_PAGE_SIZE = 1000  # the CLI's page size (sync.worker.PAGE_SIZE), so both read the same pages


@dataclass
class Compared:
    dlt_rows: int  # rows dlt loaded
    dlt_seconds: float  # its whole process
    dlt_cpu: usage.PhaseCpu
    ours: runs.Run  # `backfill --source legacy`
    ours_rows: int  # rows it archived
    ours_cpu: usage.PhaseCpu

    @property
    def dlt_rate(self) -> float:
        return self.dlt_rows / self.dlt_seconds if self.dlt_seconds > 0 else 0.0

    @property
    def ours_rate(self) -> float:
        """Rows archived over the whole process, as dlt's (startup included on both sides)."""
        return self.ours_rows / self.ours.exit.seconds if self.ours.exit.seconds > 0 else 0.0


def available() -> bool:
    return importlib.util.find_spec("dlt") is not None and importlib.util.find_spec("psycopg2") is not None


async def measure(runner: runs.Runner, databases: procs.Databases, meter: usage.Meter) -> Compared:
    """dlt's run, then ours, each into a database of its own; their CPU and records/s."""
    import anyio

    running = runner.running
    dsn = await databases.empty("dlt")
    args = [sys.executable, "-m", "bench.dlt_rest", running.base_url, running.account_sid, running.auth_token, dsn,
            str(runner.workdir / "dlt")]
    before, started = meter.sample(), time.perf_counter()
    with open(runner.workdir / "dlt.out", "wb") as out, open(runner.workdir / "dlt.err", "wb") as err:
        proc = await anyio.to_thread.run_sync(lambda: _spawn(args, out, err))
        _, status, rusage = await anyio.to_thread.run_sync(os.wait4, proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, for its CPU: tell Popen
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise BenchError(f"dlt exited with status {proc.returncode}: {procs.last_line(runner.workdir / 'dlt.err')}")
    cpu = usage.between(before, meter.sample(), seconds, child_cpu=rusage.ru_utime + rusage.ru_stime)
    loaded = json.loads((runner.workdir / "dlt.out").read_text())["rows"]
    await databases.drop(dsn)

    ours_runner = runner.with_options("--source", "legacy")
    ours_dsn = await databases.fresh("legacy-only")
    before = meter.sample()
    ours = await ours_runner.run(ours_dsn, "legacy-only")
    ours_cpu = usage.between(before, meter.sample(), ours.exit.seconds, child_cpu=ours.exit.cpu_seconds)
    ours_rows = (await runs.row_counts(ours_dsn))["legacy_messages"]
    await databases.drop(ours_dsn)
    return Compared(loaded, seconds, cpu, ours, ours_rows, ours_cpu)


def _spawn(args: list[str], out, err):
    import subprocess

    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=err)


def main(base_url: str, account_sid: str, auth_token: str, dsn: str, home: str) -> None:
    """The child: the whole legacy list through dlt's rest_api source, merged on sid."""
    os.environ["DLT_DATA_DIR"] = home  # dlt's state and load packages, not the user's ~/.dlt
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source({
        "client": {
            "base_url": base_url,
            "auth": {"type": "http_basic", "username": account_sid, "password": auth_token},
            "paginator": {"type": "json_link", "next_url_path": "next_page_uri"},
        },
        "resource_defaults": {"primary_key": "sid", "write_disposition": "merge"},
        "resources": [{
            "name": "legacy_messages",
            "endpoint": {"path": f"2010-04-01/Accounts/{account_sid}/Messages.json",
                         "params": {"PageSize": LEGACY_PAGE_SIZE}, "data_selector": "messages"},
        }],
    })
    pipeline = dlt.pipeline(pipeline_name="twilio_archive_bench", pipelines_dir=str(Path(home) / "pipelines"),
                            destination=dlt.destinations.postgres(credentials=_credentials(dsn)),
                            dataset_name="dlt_legacy")
    pipeline.run(source)
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT count(*) FROM legacy_messages")[0][0]
    print(json.dumps({"rows": rows}))


def _credentials(dsn: str) -> str:
    """The DSN as dlt reads it: the embedded server's socket directory comes as ?host= with no
    port, which dlt would replace by localhost:5432; libpq takes the directory and the port of
    the socket file in it."""
    url = urlsplit(dsn)
    query = dict(parse_qsl(url.query))
    directory = query.get("host")
    if not directory or url.hostname:
        return dsn
    port = next((p.suffix.lstrip(".") for p in Path(directory).glob(".s.PGSQL.*") if p.suffix != ".lock"), "5432")
    login = f"{url.username or 'postgres'}:{url.password or ''}"
    return urlunsplit((url.scheme, f"{login}@localhost:{port}", url.path, urlencode(query), ""))


if __name__ == "__main__":
    main(*sys.argv[1:6])
