"""The CLI, `python -m sync ...`, as a child process whose own CPU time and peak memory are measured.

Reaped with wait4 (exact CPU seconds of this child alone) and never through Popen, and killed
by its own process id whenever the caller leaves before it ended (Ctrl-C included)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import anyio

from bench import procs


@dataclass(frozen=True)
class Exit:
    """How a child ended, with its own resource use."""

    returncode: int
    seconds: float
    peak_rss_bytes: int
    peak_rss_from: str  # "VmHWM" (Linux) or "ru_maxrss"
    cpu_seconds: float  # user + system, from wait4: exact, and this child's alone


def _high_water_mark(pid: int) -> int | None:
    """The peak RSS of the process's current program, in bytes (Linux; None elsewhere or once it is gone).

    Not wait4's ru_maxrss: on Linux that starts from the parent's RSS at the fork, so a
    child of a 200 MB benchmark would never show less than 200 MB."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class Child:
    """`python -m sync ARGS` with a given environment; output kept in files under workdir."""

    def __init__(self, args: list[str], env: dict[str, str], workdir: Path, label: str, *,
                 python: str | Path = sys.executable, cwd: Path | None = None) -> None:
        # Another release (bench/baseline.py) runs from its own tree with its own interpreter:
        # from our working directory, `-m sync` would find our package first.
        self.python, self.cwd = str(python), cwd
        self.args = args
        self.env = env
        self.stdout_path = workdir / f"{label}.out"
        self.stderr_path = workdir / f"{label}.err"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0
        self.peak_rss: int | None = None
        self.exit: Exit | None = None

    def __enter__(self) -> Self:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.started = time.perf_counter()
            self.proc = subprocess.Popen([self.python, "-m", "sync", *self.args], env=self.env, cwd=self.cwd,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.exit is None:  # interrupted, or the caller gave up on it
            self.kill()

    def running(self) -> bool:
        """Whether it still runs, without reaping it (wait4 must reap it, for its CPU time)."""
        if self.exit is not None or self.proc is None:
            return False
        return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None

    async def wait(self) -> Exit:
        """Until the child exits; polled so that Ctrl-C is never stuck behind a blocking wait,
        and so that its high-water mark is read until the end (it misses at most the last 10 ms)."""
        assert self.proc is not None
        while True:
            self._watch()
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)  # noqa: ASYNC222 - WNOHANG never blocks
            if pid:
                return self._reaped(status, usage)
            await anyio.sleep(0.01)

    def kill(self) -> Exit:
        assert self.proc is not None
        if self.exit is not None:
            return self.exit
        self._watch()
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already exited; wait4 still reaps it
        _, status, usage = os.wait4(self.proc.pid, 0)
        return self._reaped(status, usage)

    def _watch(self) -> None:
        assert self.proc is not None
        mark = _high_water_mark(self.proc.pid)
        if mark is not None:
            self.peak_rss = max(self.peak_rss or 0, mark)

    def _reaped(self, status: int, usage) -> Exit:
        assert self.proc is not None
        seconds = time.perf_counter() - self.started
        code = os.waitstatus_to_exitcode(status)
        self.proc.returncode = code  # reaped here, not by Popen: tell it, or it warns that it still runs
        if self.peak_rss is not None:
            peak, source = self.peak_rss, "VmHWM"
        else:
            # ru_maxrss is in KiB on Linux and in bytes on macOS.
            peak, source = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024), "ru_maxrss"
        self.exit = Exit(code, seconds, peak, source, usage.ru_utime + usage.ru_stime)
        return self.exit

    def failure(self) -> str:
        """Why it failed, in one line: the last line it wrote to stderr."""
        return procs.last_line(self.stderr_path)
