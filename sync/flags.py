"""Command-line flags: the parser both command lines use (`python -m sync`, `python -m bench`)
and the number types of sync's flags, each refusing a bad value in one line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, not argparse's usage dump."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def bounded(convert: Callable[[str], Any], low: float, high: float, what: str,
            rule: str | None = None) -> Callable[[str], Any]:
    """An argparse type: `convert(value)` within [low, high], or one line saying why not."""
    rule = rule or f"must be between {low:g} and {high:g}"

    def parse(value: str):
        try:
            number = convert(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not {what}: {value!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{rule}, got {value}")
        return number

    return parse


page_size = bounded(int, 1, 1000, "a whole number")
port = bounded(int, 0, 65535, "a port number")
seconds = bounded(float, 0.001, 10**7, "a number of seconds", "must be a positive number of seconds")
days = bounded(int, 1, 400, "a whole number of days")
count = bounded(int, 0, 10**7, "a whole number")
milliseconds = bounded(float, 0, 10**7, "a number of milliseconds", "must be 0 or more milliseconds")
limit = bounded(int, 1, 10**6, "a whole number", "must be a whole number >= 1")
share = bounded(float, 0, 1, "a number", "must be a share between 0 and 1")


def fault_profile(value: str):
    """The emulator's --faults: a FaultProfile, or one line saying what is wrong with the spec."""
    from sync.emulator import FaultProfile  # the emulator loads only for the command that serves it

    try:
        return FaultProfile.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
