"""Legacy history behind the window: how many records, how old, in which statuses; bad settings."""

from __future__ import annotations

import pytest

from sync.emulator import Emulator
from sync.emulator.formats import DAY_MS, parse_rfc2822

from .helpers import NOW

NOW_MS = int(NOW.timestamp()) * 1000
IN_FLIGHT = {"queued", "accepted", "scheduled", "sending", "receiving"}


@pytest.fixture(scope="module")
def history() -> list[dict]:
    """500 records over the last 7 days plus 6,000 over the 393 days before, newest created first."""
    emu = Emulator(seed=2, comms_messages=10, legacy_messages=500, legacy_days=7, legacy_history=6000,
                   legacy_history_days=400, now=NOW, legacy_order="created")  # fmt: skip
    return emu.legacy_payloads()


def age_days(m: dict) -> float:
    return (NOW_MS - parse_rfc2822(m["date_created"])) / DAY_MS


def test_history_adds_its_count_between_the_window_and_its_days(history: list[dict]):
    """legacy_history records are created between legacy_days and legacy_history_days ago, spread over the span."""
    recent = [m for m in history if age_days(m) < 7]
    older = [m for m in history if age_days(m) >= 7]
    assert (len(recent), len(older)) == (500, 6000)
    assert all(age_days(m) < 400 for m in older)
    ages = sorted(age_days(m) for m in older)
    assert ages[0] < 8 and ages[-1] > 399  # from the window's edge to retention's
    assert 150 < sum(1 for a in ages if a < 30) < 500  # uniform: 23 of 393 days hold ~350


def test_history_is_in_final_statuses_with_never_sent_ones_on_every_page(history: list[dict]):
    """Old messages are done sending, and any 1,000 of them in a row hold dozens with a null date_sent."""
    older = [m for m in history if age_days(m) >= 7]
    assert not {m["status"] for m in older} & IN_FLIGHT
    nulls = [m for m in older if m["date_sent"] is None]
    assert {m["status"] for m in nulls} == {"failed", "canceled", "undelivered"}
    for start in range(0, len(older) - 999, 250):
        assert sum(m["date_sent"] is None for m in older[start:start + 1000]) >= 30, start


def test_history_is_deterministic():
    """The same seed and now give the same history, byte for byte."""
    a, b = (Emulator(seed=6, comms_messages=0, legacy_messages=50, legacy_days=7, legacy_history=400, now=NOW) for _ in "ab")
    assert a.legacy_payloads() == b.legacy_payloads()


@pytest.mark.parametrize("kwargs", [
    {"legacy_history": 10, "legacy_days": 30, "legacy_history_days": 30},
    {"legacy_history": 10, "legacy_history_days": 401},
    {"legacy_history": -1},
    {"legacy_order": "sideways"},
])  # fmt: skip
def test_bad_history_or_order_settings_are_refused(kwargs):
    """History that does not reach past legacy_days, or past 400 days, and unknown orders are ValueErrors."""
    with pytest.raises(ValueError):
        Emulator(comms_messages=0, legacy_messages=10, now=NOW, **kwargs)
