"""Who sees the progress line: a person at a terminal with text logs, nobody else."""

from __future__ import annotations

import io
import logging
import os

import pytest

from sync import logs
from sync.progress import Progress


@pytest.fixture
def terminal():
    leader, follower = os.openpty()
    with open(follower, "w") as out:
        yield out
    os.close(leader)


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch):
    monkeypatch.setattr(logs, "_format", logs._format)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def test_the_progress_line_shows_on_a_terminal_with_text_logs(terminal):
    logs.configure(logging.INFO, "text")
    assert logs.watched(terminal)


def test_no_progress_line_with_json_logs_even_on_a_terminal(terminal):
    logs.configure(logging.INFO, "json")
    assert not logs.watched(terminal)


def test_no_progress_line_where_nobody_watches():
    logs.configure(logging.INFO, "text")
    out = io.StringIO()
    Progress().finish(out)
    assert out.getvalue() == ""
