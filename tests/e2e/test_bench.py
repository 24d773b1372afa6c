"""The benchmark still runs against the code it measures: a small run, checked for what must
hold whatever the machine (no timing): every record archived, a rescan writing nothing, and a
resumed run archiving exactly what a clean one does."""

from __future__ import annotations

import json
import sys

import anyio
import pytest

pytestmark = pytest.mark.timeout(300)


async def test_a_small_benchmark_run_reports_consistent_figures(tmp_path):
    out = tmp_path / "figures.json"
    result = await anyio.run_process([sys.executable, "-m", "bench", "--messages", "5000", "--json", str(out)],
                                     check=False)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "backfill" in result.stdout.decode()
    figures = json.loads(out.read_text())
    backfill, rescan, resume = figures["backfill"], figures["rescan"], figures["resume"]
    assert backfill["records"] == figures["fetch_limit"]["records"] == figures["write_limit"]["records"] > 10_000
    assert rescan["records"] == backfill["records"]
    assert rescan["rows_written"] == 0 and rescan["rows_with_new_versions"] == 0
    assert resume["rows"] == resume["clean_rows"]
