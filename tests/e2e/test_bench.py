"""The benchmark still runs against the code it measures: a small run, checked for what must
hold whatever the machine (no timing): every record archived, a rescan writing nothing, a
resumed run archiving exactly what a clean one does, and under latency a backfill archiving
what the serial bound finds in its window with no more requests in flight than it was given."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(300)

LATENCY_MS, CONCURRENCY, LATENCY_MESSAGES = 20, 2, 5000


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """One small run of `python -m bench` with a latency phase: (stdout, the JSON figures)."""
    out = tmp_path_factory.mktemp("bench") / "figures.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--messages", "5000", "--latency-ms", str(LATENCY_MS),
         "--latency-messages", str(LATENCY_MESSAGES), "--concurrency", str(CONCURRENCY), "--mms-share", "0.1",
         "--json", str(out)],
        capture_output=True, check=False, timeout=280,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return result.stdout.decode(), json.loads(out.read_text())


def test_a_small_benchmark_run_reports_consistent_figures(bench_run):
    """The zero-latency phases archive every record once, rescan writing nothing, resume exactly."""
    stdout, figures = bench_run
    assert "backfill" in stdout
    backfill, rescan, resume = figures["backfill"], figures["rescan"], figures["resume"]
    assert backfill["records"] == figures["fetch_limit"]["records"] == figures["write_limit"]["records"] > 10_000
    assert rescan["records"] == backfill["records"]
    assert rescan["rows_written"] == 0 and rescan["rows_with_new_versions"] == 0
    assert resume["rows"] == resume["clean_rows"]
    # Each kill comes at the emulator's gate and loses at most the pages in hand.
    assert len(resume["kills"]) == 3
    assert all(0 <= kill["lost"] <= resume["pages_in_hand"] for kill in resume["kills"])


def test_the_latency_phase_reports_the_bound_the_backfill_and_its_peak_in_flight(bench_run):
    """--latency-ms prints and writes the serial bound and the backfill at that latency, the
    backfill archiving every record of the window with at most --concurrency requests in flight."""
    stdout, figures = bench_run
    phase = figures["latency"]
    assert phase["concurrency"] == CONCURRENCY and phase["messages"] == LATENCY_MESSAGES
    assert phase["legacy_order"] == "sent-created"
    assert phase["zero_latency_backfill_records_per_second"] == figures["backfill"]["records_per_second"]
    zero, run = phase["runs"]  # the same data set at 0 ms first, then at the latency asked
    assert zero["latency_ms"] == 0 and zero["backfill"]["rows"] == run["backfill"]["rows"]
    bound, backfill = run["serial_bound"], run["backfill"]
    assert run["latency_ms"] == LATENCY_MS
    # The serial bound reads one page at a time per list, the three lists side by side.
    assert bound["peak_in_flight"] <= 3
    assert bound["requests"] == bound["pages"] == sum(s["pages"] for s in bound["streams"].values())
    assert bound["pages_x_latency_seconds"] == pytest.approx(bound["pages"] * LATENCY_MS / 1000)
    # Every message of the data set is in the window, on both APIs.
    assert bound["rows_in_window"]["comms_messages"] == bound["rows_in_window"]["legacy_messages"] == LATENCY_MESSAGES
    assert backfill["rows"] == bound["rows_in_window"]
    assert 1 <= backfill["peak_in_flight"] <= CONCURRENCY
    assert run["speedup"] is not None and run["speedup"] > 0 and run["records_per_second"] > 0
    table = stdout[stdout.index("at latency"):]
    assert f"{LATENCY_MS} ms" in table and f"{backfill['peak_in_flight']} of {CONCURRENCY}" in table
    assert "speedup" in table and "serial bound" in table


def test_the_media_phase_reports_one_media_request_per_message_with_media(bench_run):
    """--mms-share runs the legacy backfill without and with media: the difference is one request per
    message with media (every list fits a page), every item archived, the same messages archived."""
    stdout, figures = bench_run
    phase = figures["media"]
    assert phase["mms_share"] == 0.1 and 0.05 < phase["messages_with_media"] / phase["messages"] < 0.2
    assert phase["media_requests"] == phase["messages_with_media"]
    assert phase["media_requests_per_message_with_media"] == 1.0
    assert phase["items"] >= phase["messages_with_media"]
    assert phase["records_per_second_with_media"] > 0 and phase["records_per_second_without_media"] > 0
    assert "per message with media" in stdout[stdout.index("media     legacy list only"):]


def test_the_baseline_release_is_measured_beside_the_change(bench_run):
    """The baseline release (built from git) archives the same records, its rescan writing nothing,
    and its CPU per record is printed and written beside the change's."""
    stdout, figures = bench_run
    compared = figures["baseline"]
    if "skipped" in compared:
        pytest.skip(f"no baseline to build here: {compared['skipped']}")
    assert compared["backfill"]["records"] == figures["backfill"]["records"]
    assert compared["rescan"]["rows_written"] == 0
    for side in ("change", "baseline"):
        assert compared["cpu_per_record"][side]["backfill"]["client_us"] > 0
    assert f"change vs baseline {compared['commit'][:12]}" in stdout


def test_a_baseline_commit_the_repository_lacks_is_skipped_with_its_reason(tmp_path):
    """A --baseline commit that git does not know is skipped, saying why, before anything is built."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    from bench import baseline

    skipped = baseline.build("0000000", cache=tmp_path / "cache")
    assert isinstance(skipped, baseline.Skipped)
    assert "commit 0000000 is not in this repository" in skipped.reason
    assert not (tmp_path / "cache").exists()
