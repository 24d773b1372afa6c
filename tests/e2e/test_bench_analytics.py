"""bench.analytics still runs against the views and the dashboard it times: a small load, every
query and every panel timed (no timing asserted: that depends on the machine)."""

from __future__ import annotations

import sys

import anyio
import pytest

from tests import analysts

pytestmark = pytest.mark.timeout(300)


async def test_a_small_analytics_benchmark_times_every_view_and_panel():
    result = await anyio.run_process([sys.executable, "-m", "bench.analytics", "--messages", "3000"],
                                     cwd=analysts.ROOT, check=False)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "loaded: 6,000 messages, 6,000 status-history rows" in out
    timed = [line.split(" s  ", 1)[1] for line in out.splitlines() if " s  " in line]
    for view in ("message_facts", "daily_account_overview", "number_overview", "error_overview"):
        assert any(t.startswith(view) for t in timed), view
    assert {f"panel: {title}" for title, _ in analysts.panel_sql(analysts.dashboard())} <= set(timed)
    # The overview's refresh, as the archiver runs it: every day owed, nothing owed, one day owed.
    refreshes = [t for t in timed if t.startswith("refresh daily_account_overview")]
    assert len(refreshes) == 3
    assert "nothing owed (0 days)" in refreshes[1] and "changed (1 days)" in refreshes[2]
