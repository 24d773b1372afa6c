"""The release to beat, built from git and measured in the same run as the change (issue 19).

CPU per record moves with whatever else the machine runs, so a figure from another day says
little: the bench builds the baseline release (by default commit 37c0a68) and runs its
`python -m sync backfill` and a rescan against the same emulator, the same window and the same
Postgres as the change's, right after the change's own backfill and rescan.

The build: `git archive` of the commit into a cache directory, then a venv there with that tree
installed editable (the release's wheel leaves out a package, so a plain install does not run).
The cache (under bench/results/, one directory per commit) is reused by later runs; a build is
only trusted once its last step wrote the `ready` file. Without git, without the commit (an
installed copy, a shallow clone) or when the venv cannot be built, the comparison is skipped
with one line saying why, and the rest of the bench goes on."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from bench import BenchError, procs, runs, usage
from bench.child import Child
from bench.console import say, step

CACHE = Path(__file__).resolve().parent / "results" / "baseline"
REPOSITORY = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Build:
    commit: str  # the full hash
    source: Path  # its tree
    python: Path  # the interpreter of its venv, where the tree is installed editable


@dataclass
class Measured:
    """The baseline's backfill and rescan, and the CPU each cost."""

    commit: str
    backfill: runs.Run
    backfill_cpu: usage.PhaseCpu
    rescan: runs.Run
    rescan_cpu: usage.PhaseCpu


@dataclass(frozen=True)
class Skipped:
    commit: str
    reason: str


def _git(*args: str) -> str | None:
    """git's output, or None when git or the repository is not there or the command failed."""
    git = shutil.which("git")
    if git is None:
        return None
    done = subprocess.run([git, "-C", str(REPOSITORY), *args], capture_output=True, check=False)
    return done.stdout.decode().strip() if done.returncode == 0 else None


def build(commit: str, cache: Path = CACHE) -> Build | Skipped:
    """The baseline's tree and venv, built now or found in the cache; or why there is none."""
    if shutil.which("git") is None:
        return Skipped(commit, "git is not installed")
    full = _git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}")
    if not full:
        return Skipped(commit, f"commit {commit} is not in this repository ({REPOSITORY.name})")
    home = cache / full[:12]
    found = Build(full, home / "src", home / "venv" / "bin" / "python")
    if (home / "ready").exists() and found.python.exists():
        return found
    shutil.rmtree(home, ignore_errors=True)
    found.source.mkdir(parents=True)
    git = shutil.which("git")
    archive = subprocess.run([git, "-C", str(REPOSITORY), "archive", "--format=tar", full],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        return Skipped(commit, f"git archive failed: {archive.stderr.decode().strip()[-200:]}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(found.source, filter="data")
    for command in ([sys.executable, "-m", "venv", str(home / "venv")],
                    [str(found.python), "-m", "pip", "install", "-q", "-e", str(found.source)]):
        done = subprocess.run(command, capture_output=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).decode().strip().splitlines()[-1:] or ["no output"]
            return Skipped(commit, f"could not build its venv ({' '.join(command[2:4])}): {tail[0]}")
    (home / "ready").write_text(full + "\n")
    return found


async def measure(built: Build, runner: runs.Runner, databases: procs.Databases,
                  meter: usage.Meter) -> Measured:
    """The baseline's migrate, backfill and rescan into a database of its own."""
    theirs = runner.with_python(built.python, built.source)
    dsn = await databases.empty("baseline")
    with Child(["migrate"], theirs.env(dsn), runner.workdir, "baseline-migrate", python=built.python,
               cwd=built.source) as child:
        exit = await child.wait()
        if exit.returncode != 0:
            raise BenchError(f"baseline {built.commit[:12]}: `python -m sync migrate` exited with status "
                             f"{exit.returncode}: {child.failure()}")
    before = meter.sample()
    backfill = await runs.backfill(theirs, dsn)
    backfill_cpu = usage.between(before, meter.sample(), backfill.exit.seconds, child_cpu=backfill.exit.cpu_seconds)
    before = meter.sample()
    rescan = await runs.rescan(theirs, dsn)
    rescan_cpu = usage.between(before, meter.sample(), rescan.exit.seconds, child_cpu=rescan.exit.cpu_seconds)
    await databases.drop(dsn)
    return Measured(built.commit, backfill, backfill_cpu, rescan, rescan_cpu)


async def run(commit: str, runner: runs.Runner, databases: procs.Databases,
              meter: usage.Meter) -> Measured | Skipped:
    """Build (or find) the baseline and measure it; Skipped, said in one line, when it cannot be built."""
    import anyio

    with step(f"baseline {commit}: building it from git (cached under {CACHE.parent.name}/{CACHE.name}/)"):
        built = await anyio.to_thread.run_sync(build, commit)
    if isinstance(built, Skipped):
        say(f"baseline {commit}: skipped: {built.reason}")
        return built
    with step(f"baseline {commit}: backfill and rescan"):
        measured = await measure(built, runner, databases, meter)
    say(f"baseline backfill: {measured.backfill.records:,} records in {measured.backfill.span_seconds:.1f} s = "
        f"{measured.backfill.rate:,.0f}/s; rescan {measured.rescan.rate:,.0f}/s, "
        f"{measured.rescan.rows_written:,} rows written")
    return measured
