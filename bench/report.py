"""The figures of one run: the machine, a plain-text table for people, and JSON for comparing runs."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import media
from bench.baseline import Measured, Skipped
from bench.dlt_rest import Compared
from bench.latency import AtLatency, Phase
from bench.limits import Limit
from bench.runs import Resume, Run
from bench.usage import PhaseCpu
from sync import models

MB = 1_000_000


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        # Other work on the machine moves every figure: say how busy it was when we started.
        "load_average_1min_at_start": None if load is None else round(load[0], 2),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@dataclass
class Results:
    config: dict[str, Any]
    machine: dict[str, Any]
    fetch: Limit
    write_new: Limit
    write_unchanged: Limit
    backfill: Run
    rescan: Run
    resume: Resume
    cpu: dict[str, PhaseCpu]  # by phase
    phase_seconds: dict[str, float]  # wall time of each step, setup included
    requests_source: str  # "emulator" or "pages in twilio.scans"
    latency: Phase | None = None  # with --latency-ms: the serial bound and a backfill at each latency
    baseline: Measured | Skipped | None = None  # with --baseline (the default): the release to beat
    dlt: Compared | None = None  # with --dlt: dlt's rest_api source and ours on the legacy list alone
    media: media.Phase | None = None  # with --mms-share: what reading media lists adds (bench/media.py)

    @property
    def limit(self) -> float:
        return min(self.fetch.rate, self.write_new.rate)

    @property
    def rescan_limit(self) -> float:
        return min(self.fetch.rate, self.write_unchanged.rate)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b > 0 else None


# ---- JSON -------------------------------------------------------------------------------------


def _limit_json(limit: Limit) -> dict[str, Any]:
    return {
        "records": limit.records, "seconds": round(limit.seconds, 3), "records_per_second": round(limit.rate),
        "streams": {s: {**asdict(f), "seconds": round(f.seconds, 3), "records_per_second": round(f.rate)}
                    for s, f in limit.streams.items()},
    }


def _run_json(run: Run) -> dict[str, Any]:
    return {
        "records": run.records, "pages": run.pages, "rows_written": run.rows_written,
        "requests": run.requests, "emulator_requests": run.emulator_requests,
        "archiving_seconds": round(run.span_seconds, 3), "records_per_second": round(run.rate),
        "process": {**asdict(run.exit), "seconds": round(run.exit.seconds, 3)},
        "wal_bytes": run.wal_bytes, "wal_full_page_images": run.wal_full_pages,
        "rows_with_new_versions": run.rows_with_new_versions,
        "streams": {s.stream: {**asdict(s), "seconds": round(s.seconds, 3), "records_per_second": round(s.rate)}
                    for s in run.scans},
    }


def to_json(r: Results) -> dict[str, Any]:
    resume = r.resume
    return {
        "machine": r.machine,
        "config": r.config,
        "fetch_limit": _limit_json(r.fetch),
        "write_limit": _limit_json(r.write_new),
        "write_limit_unchanged": _limit_json(r.write_unchanged),
        "backfill": _run_json(r.backfill),
        "rescan": _run_json(r.rescan),
        "resume": {
            "kills": [{"requests": k.requests, "pages_saved": k.pages_saved, "lost": k.lost,
                       "records_at_kill": k.records_at_kill, "killed_after_seconds": round(k.exit.seconds, 3),
                       "process": asdict(k.exit)} for k in resume.kills],
            "pages_in_hand": resume.in_hand, "lost_per_kill": round(resume.lost_per_kill, 1),
            "requests": resume.requests,
            "clean_requests": resume.clean_requests, "request_ratio": _ratio(resume.requests, resume.clean_requests),
            "seconds": round(resume.seconds, 3), "clean_seconds": round(resume.clean_seconds, 3),
            "time_ratio": _ratio(resume.seconds, resume.clean_seconds),
            "rows": resume.rows, "clean_rows": resume.clean_rows,
            "second_run": _run_json(resume.second),
        },
        "requests_source": r.requests_source,
        "ratios": {
            "backfill_to_limit": _ratio(r.backfill.rate, r.limit),
            "rescan_to_limit": _ratio(r.rescan.rate, r.rescan_limit),
        },
        "cpu_seconds": {phase: {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(c).items()}
                        for phase, c in r.cpu.items()},
        "phase_seconds": {k: round(v, 3) for k, v in r.phase_seconds.items()},
        **({"latency": _latency_json(r.latency, r.backfill)} if r.latency is not None else {}),
        **({"baseline": _baseline_json(r)} if r.baseline is not None else {}),
        **({"dlt": _dlt_json(r.dlt)} if r.dlt is not None else {}),
        **({"media": media.json(r.media)} if r.media is not None else {}),
    }


def _per_row(cpu: PhaseCpu, rows: int) -> dict[str, float | None]:
    return {"client_us": round(cpu.client / max(rows, 1) * 1e6, 1),
            "postgres_us": None if cpu.postgres is None else round(cpu.postgres / max(rows, 1) * 1e6, 1)}


def _dlt_json(d: Compared) -> dict[str, Any]:
    return {
        "dlt": {"rows": d.dlt_rows, "seconds": round(d.dlt_seconds, 3), "rows_per_second": round(d.dlt_rate),
                "cpu_per_row": _per_row(d.dlt_cpu, d.dlt_rows)},
        "ours_legacy_only": {"rows": d.ours_rows, "seconds": round(d.ours.exit.seconds, 3),
                             "rows_per_second": round(d.ours_rate), "cpu_per_row": _per_row(d.ours_cpu, d.ours_rows)},
        "speed_ratio": _ratio(d.ours_rate, d.dlt_rate),
    }


def per_record(cpu: PhaseCpu, run: Run) -> dict[str, float | None]:
    """CPU microseconds per archived record: the CLI process (startup included) and Postgres."""
    records = max(run.records, 1)
    client = cpu.client / records * 1e6
    postgres = None if cpu.postgres is None else cpu.postgres / records * 1e6
    return {"client_us": round(client, 1), "postgres_us": None if postgres is None else round(postgres, 1),
            "total_us": None if postgres is None else round(client + postgres, 1)}


def _baseline_json(r: Results) -> dict[str, Any]:
    b = r.baseline
    if isinstance(b, Skipped):
        return {"commit": b.commit, "skipped": b.reason}
    change = {"backfill": per_record(r.cpu["backfill"], r.backfill), "rescan": per_record(r.cpu["rescan"], r.rescan)}
    theirs = {"backfill": per_record(b.backfill_cpu, b.backfill), "rescan": per_record(b.rescan_cpu, b.rescan)}
    return {
        "commit": b.commit,
        "cpu_per_record": {"change": change, "baseline": theirs},
        "ratios": {phase: {k: _ratio(change[phase][k] or 0, theirs[phase][k] or 0) for k in change[phase]}
                   for phase in change},
        "backfill": _run_json(b.backfill), "rescan": _run_json(b.rescan),
        "records_per_second": {"backfill": {"change": round(r.backfill.rate), "baseline": round(b.backfill.rate)},
                               "rescan": {"change": round(r.rescan.rate), "baseline": round(b.rescan.rate)}},
    }


def _latency_json(phase: Phase, zero: Run) -> dict[str, Any]:
    def one(f: AtLatency) -> dict[str, Any]:
        b = f.bound
        return {
            "latency_ms": f.latency_ms,
            "serial_bound": {
                "seconds": round(b.seconds, 3), "pages": b.pages, "requests": b.requests,
                "pages_x_latency_seconds": round(f.pages_x_latency, 3), "peak_in_flight": b.peak_in_flight,
                "rows_in_window": b.rows,
                "streams": {s: {**asdict(x), "seconds": round(x.seconds, 3)} for s, x in b.streams.items()},
            },
            "backfill": {**_run_json(f.backfill), "peak_in_flight": f.peak_in_flight, "rows": f.rows},
            "speedup": _round(f.speedup), "speedup_over_process_time": _round(f.process_speedup),
            "mean_in_flight": _round(f.mean_in_flight),
            "records_per_second": round(f.backfill.rate),
        }

    return {
        "messages": phase.messages, "legacy_days": phase.legacy_days, "legacy_order": phase.legacy_order,
        "concurrency": phase.concurrency, "since": phase.since, "until": phase.until,
        "zero_latency_backfill_records_per_second": round(zero.rate),
        "runs": [one(f) for f in phase.runs],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def write_json(path: Path, r: Results) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(r), indent=2) + "\n")


# ---- the table --------------------------------------------------------------------------------


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / MB:,.1f} MB"


def _wal(run: Run) -> str:
    pages = "" if run.wal_full_pages is None else f" ({run.wal_full_pages:,} full-page images)"
    return _mb(run.wal_bytes) + pages


def table(r: Results) -> str:
    m, c = r.machine, r.config
    lines = [
        f"twilio-archive benchmark, {m['date']}",
        (f"machine   {m['cpu']}, {m['cores']} cores, {m['system']}, Python {m['python']}, "
         f"load {m['load_average_1min_at_start']} at start"),
        f"postgres  {c['postgres']}",
        f"data      {c['messages']:,} messages per API (seed {c['seed']}), backfill --since {c['since']} --until {c['until']}",
        "",
    ]
    streams = models.STREAMS
    header = ["records/s", *streams, "all"]
    rows: list[list[str]] = [
        ["fetch limit (nothing written)", *(_n(_limit_rate(r.fetch, s)) for s in streams), _n(r.fetch.rate)],
        ["write limit (new rows)", *(_n(_limit_rate(r.write_new, s)) for s in streams), _n(r.write_new.rate)],
        ["write limit (unchanged rows)", *(_n(_limit_rate(r.write_unchanged, s)) for s in streams),
         _n(r.write_unchanged.rate)],
        ["backfill (CLI, empty database)", *(_n(_by_stream(r.backfill).get(s, (0, None))[1]) for s in streams),
         _n(r.backfill.rate)],
        ["rescan (CLI, nothing changed)", *(_n(_by_stream(r.rescan).get(s, (0, None))[1]) for s in streams),
         _n(r.rescan.rate)],
        ["(records, not per second)", *(_n(_by_stream(r.backfill).get(s, (None, 0))[0]) for s in streams),
         _n(r.backfill.records)],
    ]
    lines += _aligned([header, *rows])
    b, s, res = r.backfill, r.rescan, r.resume
    facts = [
        ["backfill / min(fetch, write new)", f"{_ratio(b.rate, r.limit)}"],
        ["rescan / min(fetch, write unchanged)", f"{_ratio(s.rate, r.rescan_limit)}"],
        ["backfill", (f"{b.records:,} records in {b.span_seconds:.1f} s archiving ({b.exit.seconds:.1f} s process), "
                      f"{b.requests:,} requests, peak RSS {_mb(b.exit.peak_rss_bytes)}, WAL {_wal(b)}")],
        ["rescan", (f"{s.rows_written:,} rows written (twilio.scans), {s.rows_with_new_versions:,} new row versions "
                    f"(xmin), {s.requests:,} requests, peak RSS {_mb(s.exit.peak_rss_bytes)}, WAL {_wal(s)}")],
        ["resume after kill -9", (f"{len(res.kills)} kills, each losing {', '.join(str(k.lost) for k in res.kills)} "
                                  f"requests (at most {res.in_hand} pages in hand); "
                                  f"{res.requests:,} requests vs {res.clean_requests:,} clean = "
                                  f"{_ratio(res.requests, res.clean_requests)}x "
                                  f"({res.lost_per_kill:.1f} a kill); wall time {_ratio(res.seconds, res.clean_seconds)}x")],
        ["requests counted from", r.requests_source],
    ]
    lines += ["", *_aligned(facts, numeric=False)]
    cpu_rows = [["CPU seconds", "wall", "client", "emulator", "postgres", "busy"]]
    for phase, p in r.cpu.items():
        cpu_rows.append([phase, f"{p.wall_seconds:.1f}", f"{p.client:.1f}", f"{p.emulator:.1f}",
                         "-" if p.postgres is None else f"{p.postgres:.1f}", f"{p.busy:.0%}"])
    if r.latency is not None:
        lines += ["", *_latency_lines(r.latency, r.backfill)]
    lines += ["", *_aligned(cpu_rows)]
    if r.baseline is not None:
        lines += ["", *_baseline_lines(r)]
    if r.dlt is not None:
        lines += ["", *_dlt_lines(r.dlt)]
    if r.media is not None:
        lines += ["", *media.lines(r.media)]
    total = sum(r.phase_seconds.values())
    lines += ["", f"took {total:.0f} s: " + ", ".join(f"{k} {v:.1f} s" for k, v in r.phase_seconds.items())]
    return "\n".join(lines)


def _latency_lines(phase: Phase, zero: Run) -> list[str]:
    lines = [
        (f"latency   {phase.messages:,} messages per API over the last {phase.legacy_days} days, legacy list in "
         f"{phase.legacy_order} order; backfill --since {phase.since} --until {phase.until} "
         f"--concurrency {phase.concurrency}"),
        "",
    ]
    rows = [["at latency", "serial bound", "pages", "pages x latency", "backfill", "speedup", "records/s",
             "requests", "peak in flight", "mean"]]
    for f in phase.runs:
        b = f.bound
        rows.append([
            f"{f.latency_ms} ms", f"{b.seconds:.1f} s", "/".join(str(b.streams[s].pages) for s in models.STREAMS),
            f"{f.pages_x_latency:.1f} s", f"{f.backfill.span_seconds:.1f} s",
            "-" if f.speedup is None else f"{f.speedup:.2f}x", _n(f.backfill.rate), _n(f.backfill.requests),
            "-" if f.peak_in_flight is None else f"{f.peak_in_flight} of {phase.concurrency}",
            "-" if f.mean_in_flight is None else f"{f.mean_in_flight:.1f}",
        ])
    rows.append(["(0 ms, the backfill above)", "-", "-", "-", f"{zero.span_seconds:.1f} s", "-", _n(zero.rate),
                 _n(zero.requests), "-", "-"])
    lines += _aligned(rows)
    lines += [
        "",
        (f"serial bound: each list one page at a time ({' / '.join(models.STREAMS)} pages), side by side; "
         "backfill: first scan start to last scan end; speedup = serial bound / backfill; "
         "mean in flight = requests x latency / backfill"),
    ]
    for f in phase.runs:
        lines.append(f"at {f.latency_ms} ms: backfill process {f.backfill.exit.seconds:.1f} s "
                     f"(speedup over it {f.process_speedup or 0:.2f}x), {sum(f.rows.values()):,} rows archived = "
                     f"{sum(f.bound.rows.values()):,} in the window, serial bound peak in flight "
                     f"{f.bound.peak_in_flight}")
    return lines


def _baseline_lines(r: Results) -> list[str]:
    b = r.baseline
    if isinstance(b, Skipped):
        return [f"baseline {b.commit}: skipped: {b.reason}"]
    rows = [[f"change vs baseline {b.commit[:12]} (same run)", "change", "baseline", "ratio"]]
    for phase, ours, ours_cpu, theirs, theirs_cpu in (
            ("backfill", r.backfill, r.cpu["backfill"], b.backfill, b.backfill_cpu),
            ("rescan", r.rescan, r.cpu["rescan"], b.rescan, b.rescan_cpu)):
        mine, base = per_record(ours_cpu, ours), per_record(theirs_cpu, theirs)
        for key, what in (("client_us", "client"), ("postgres_us", "Postgres"), ("total_us", "total")):
            rows.append([f"{phase}: CPU us/record, {what}", _us(mine[key]), _us(base[key]),
                         _x(mine[key], base[key])])
        rows.append([f"{phase}: records/s", _n(ours.rate), _n(theirs.rate), _x(ours.rate, theirs.rate)])
    rows.append(["rescan: rows written", _n(r.rescan.rows_written), _n(b.rescan.rows_written), ""])
    return [*_aligned(rows), "(CPU of the whole `python -m sync backfill` process, startup included, and of every "
                               "Postgres process meanwhile, over the records it archived)"]


def _dlt_lines(d: Compared) -> list[str]:
    ours, theirs = _per_row(d.ours_cpu, d.ours_rows), _per_row(d.dlt_cpu, d.dlt_rows)
    rows = [["legacy list alone (whole process)", "ours", "dlt rest_api", "ratio"],
            ["rows archived", _n(d.ours_rows), _n(d.dlt_rows), ""],
            ["rows/s", _n(d.ours_rate), _n(d.dlt_rate), _x(d.ours_rate, d.dlt_rate)],
            ["CPU us/row, client", _us(ours["client_us"]), _us(theirs["client_us"]),
             _x(ours["client_us"], theirs["client_us"])],
            ["CPU us/row, Postgres", _us(ours["postgres_us"]), _us(theirs["postgres_us"]),
             _x(ours["postgres_us"], theirs["postgres_us"])]]
    return _aligned(rows)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _x(value: float | None, base: float | None) -> str:
    return "-" if value is None or not base else f"{value / base:.2f}x"


def _limit_rate(limit: Limit, stream: str) -> float | None:
    figure = limit.streams.get(stream)
    return None if figure is None else figure.rate


def _by_stream(run: Run) -> dict[str, tuple[int, float]]:
    return {s.stream: (s.records, s.rate) for s in run.scans}


def _aligned(rows: list[list[str]], *, numeric: bool = True) -> list[str]:
    """First column left-aligned; the others right-aligned (numbers) or left-aligned (text)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(w) if numeric else cell.ljust(w) for cell, w in zip(row[1:], widths[1:])]
        out.append("  ".join(cells).rstrip())
    return out

