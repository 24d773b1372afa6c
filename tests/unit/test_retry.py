"""The one retry loop (sync.retry): what it retries, how long it waits, when it stops."""

import logging

import pytest

from sync.retry import Backoff, retrying

log = logging.getLogger("test")


class Flaky(Exception):
    def __init__(self, retry_after=None):
        super().__init__("flaky")
        self.retry_after = retry_after


@pytest.mark.parametrize("attempt", range(12))
@pytest.mark.parametrize("retry_after", [None, 0.0, 1.0, 45.0])
def test_backoff_is_capped_and_never_sooner_than_retry_after(attempt, retry_after):
    """Every delay is at least Retry-After and, without one, at most the cap."""
    policy = Backoff(base=0.5, cap=30.0)
    for _ in range(20):
        delay = policy.delay(attempt, retry_after)
        assert delay >= (retry_after or 0.0)
        assert delay <= max(30.0, retry_after or 0.0)


def fails(times: int, exc_factory=Flaky):
    calls = []

    async def operation():
        calls.append(1)
        if len(calls) <= times:
            raise exc_factory()
        return "ok"

    return operation, calls


async def test_retries_until_success():
    """Failures worth retrying are retried; the result of the first success is returned."""
    operation, calls = fails(3)
    assert await retrying(operation, Backoff(attempts=5, base=0.001), Flaky, log=log, what="x") == "ok"
    assert len(calls) == 4


async def test_gives_up_after_the_attempts_with_the_last_failure():
    """After `attempts` tries the last failure itself is raised."""
    operation, calls = fails(10)
    with pytest.raises(Flaky):
        await retrying(operation, Backoff(attempts=3, base=0.001), Flaky, log=log, what="x")
    assert len(calls) == 3


async def test_other_errors_pass_straight_through():
    """What is not in retry_on is not retried: one call, the error as it was."""
    operation, calls = fails(5, lambda: KeyError("fatal"))
    with pytest.raises(KeyError):
        await retrying(operation, Backoff(attempts=5, base=0.001), Flaky, log=log, what="x")
    assert len(calls) == 1


async def test_a_time_budget_stops_retries_that_would_run_past_it():
    """With a budget, a wait that would end beyond it is not started: the failure is raised."""
    operation, calls = fails(10, lambda: Flaky(retry_after=5.0))
    with pytest.raises(Flaky):
        await retrying(operation, Backoff(attempts=None, base=0.001, budget=1.0), Flaky, log=log, what="x")
    assert len(calls) == 1


async def test_each_retry_is_logged_with_its_cause(caplog):
    """Every retry leaves one log line naming what is retried and why."""
    operation, _ = fails(2)
    with caplog.at_level(logging.WARNING, logger="test"):
        await retrying(operation, Backoff(attempts=5, base=0.001), Flaky, log=log, what="GET /x")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("what='GET /x'" in line and "flaky" in line for line in lines)
