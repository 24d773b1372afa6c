"""The collector's tuning for archiving (sync/collector.py), which `backfill` and `run` wrap their work in."""

from __future__ import annotations

import gc

import pytest

from sync import collector


def test_archiving_freezes_what_is_loaded_deepens_the_young_generation_and_puts_both_back():
    before = gc.get_threshold()
    frozen = gc.get_freeze_count()
    with collector.tuned():
        assert gc.get_threshold() == (collector.YOUNG, *before[1:])
        assert gc.get_freeze_count() > frozen  # the modules loaded so far are never scanned again
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_the_collector_is_put_back_when_the_work_fails():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), collector.tuned():
        raise RuntimeError("a pass that failed")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
