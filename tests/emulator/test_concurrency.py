"""Latency, the per-credential concurrency limit, requests in flight and Twilio-Concurrent-Requests,
through real HTTP against the served emulator (and `python -m sync emulator` as a process)."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import anyio
import pytest

from sync.emulator import DEFAULT_ACCOUNT_SID, DEFAULT_API_KEY_SECRET, DEFAULT_API_KEY_SID, DEFAULT_AUTH_TOKEN, Emulator, FaultProfile
from tests.cli import cli_env, sync_cli

from .helpers import LEGACY_LIST, basic_auth, get_json, legacy_message
from .test_faults import CONTROL, DIALECTS, V1_LIST, answer, error_body, list_path

HEADER = "Twilio-Concurrent-Requests"
# Long enough that requests sent together are all in flight at once on a loaded machine;
# no assertion depends on it beyond that.
HOLD = 1.0


async def together(http: aiohttp.ClientSession, path: str, n: int) -> list[tuple[int, dict, dict]]:
    """n requests for `path` sent at once."""
    return await asyncio.gather(*(answer(http, path) for _ in range(n)))


def test_parse_reads_latency_in_milliseconds_and_the_concurrency_limit():
    """latency-ms=N is N/1000 seconds; concurrency-limit is a whole number >= 1; spec() round-trips."""
    profile = FaultProfile.parse("latency-ms=50,concurrency_limit=3,503=0.1")
    assert profile == FaultProfile(latency=0.05, concurrency_limit=3, p503=0.1)
    assert FaultProfile.parse(profile.spec()) == profile and "latency-ms=50" in profile.spec()
    assert not FaultProfile(latency=0.05, concurrency_limit=3).active  # nothing for fault selection to do
    for bad, named in [("latency-ms=-1", "latency-ms=-1"), ("concurrency-limit=0", "concurrency-limit=0"),
                       ("concurrency-limit=1.5", "not a whole number"), ("latency-ms=inf", "not a finite")]:
        with pytest.raises(ValueError, match=named):
            FaultProfile.parse(bad)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_over_the_limit_is_429_20429_without_retry_after(http, emu: Emulator, dialect):
    """With 5 requests in flight at once and a limit of 2, the 3 that arrive over it get 429 (20429)
    in the API's dialect and no Retry-After; the 2 others are answered."""
    emu.faults.profile = FaultProfile(latency=HOLD, concurrency_limit=2)
    answers = await together(http, list_path(dialect), 5)
    assert sorted(status for status, _, _ in answers) == [200, 200, 429, 429, 429]
    message = "Too many requests" if dialect == "legacy" else (
        "Too many requests. Please retry according to the Retry-After response header.")
    for status, headers, body in answers:
        if status == 429:
            assert body == error_body(dialect, 429, 20429, message)
            assert "Retry-After" not in headers
    assert emu.faults.injected == {"concurrency": 3} and emu.faults.requests == 5
    assert emu.faults.peak_in_flight == {DEFAULT_ACCOUNT_SID: 5}  # the refused count while in flight
    assert emu.faults.retry_after_violations == 0
    assert (await answer(http, list_path(dialect)))[0] == 200  # alone, under the limit


async def test_every_authenticated_answer_says_how_many_requests_are_in_flight(base_url, http, emu: Emulator):
    """Twilio-Concurrent-Requests on a success, an API error, an injected fault and a dropped
    answer; requests in flight together count each other; a 401 carries none."""
    assert (await answer(http, LEGACY_LIST))[1][HEADER] == "1"
    async with http.get(legacy_message("SM" + "0" * 32)) as response:
        assert response.status == 404 and response.headers[HEADER] == "1"
    emu.faults.inject("503")
    status, headers, _ = await answer(http, V1_LIST)
    assert status == 503 and headers[HEADER] == "1" and "Retry-After" in headers
    emu.faults.inject("drop")
    async with http.get(V1_LIST) as response:
        assert response.headers[HEADER] == "1"
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    emu.faults.profile = FaultProfile(latency=HOLD)
    answers = await together(http, V1_LIST, 3)
    assert sorted(headers[HEADER] for _, headers, _ in answers) == ["1", "2", "3"]
    async with aiohttp.ClientSession(base_url, headers=basic_auth(DEFAULT_ACCOUNT_SID, "wrong")) as intruder:
        status, headers, _ = await answer(intruder, V1_LIST)
    assert status == 401 and HEADER not in headers


async def test_latency_holds_every_request_on_top_of_an_injected_fault(http, emu: Emulator):
    """Injected 503s with latency: still the 503 with its Retry-After, and held in flight together
    (without latency an injected error is answered at once and two never overlap)."""
    emu.faults.profile = FaultProfile(latency=HOLD, retry_after=2)
    emu.faults.inject("503", times=3)
    answers = await together(http, V1_LIST, 3)
    assert [(status, headers["Retry-After"]) for status, headers, _ in answers] == [(503, "2")] * 3
    assert emu.faults.injected == {"503": 3}
    assert emu.faults.peak_in_flight == {DEFAULT_ACCOUNT_SID: 3}


async def test_without_latency_an_injected_error_is_never_in_flight_with_another(http, emu: Emulator):
    """The control case of the test above: the same requests, no latency, never overlap."""
    emu.faults.inject("503", times=3)
    answers = await together(http, V1_LIST, 3)
    assert [status for status, _, _ in answers] == [503] * 3
    assert emu.faults.peak_in_flight == {DEFAULT_ACCOUNT_SID: 1}


async def test_in_flight_is_counted_per_credential_and_reset_by_the_control_route(base_url, http, emu: Emulator):
    """Each credential has its own count, limit and peak; GET /_emulator/faults reports the peaks and
    a reset clears them."""
    emu.faults.profile = FaultProfile(latency=HOLD, concurrency_limit=2)
    async with aiohttp.ClientSession(base_url, headers=basic_auth(DEFAULT_API_KEY_SID, DEFAULT_API_KEY_SECRET)) as key:
        mine, theirs = await asyncio.gather(together(http, LEGACY_LIST, 2), together(key, LEGACY_LIST, 2))
    assert [status for status, _, _ in mine + theirs] == [200] * 4
    peaks = {DEFAULT_ACCOUNT_SID: 2, DEFAULT_API_KEY_SID: 2}
    assert emu.faults.peak_in_flight == peaks
    async with aiohttp.ClientSession(base_url) as control:
        status, stats = await get_json(control, CONTROL)
        assert status == 200 and stats["peak_in_flight"] == peaks and stats["in_flight"] == {}
        assert stats["profile"]["latency"] == HOLD and stats["profile"]["concurrency_limit"] == 2
        async with control.post(CONTROL, json={"reset": True, "profile": ""}) as response:
            assert (await response.json())["peak_in_flight"] == {}
    assert emu.faults.peak_in_flight == {} and emu.faults.profile == FaultProfile()


async def test_the_emulator_command_takes_latency_and_concurrency_limit_with_faults():
    """--latency-ms and --concurrency-limit set the profile together with --faults."""
    command = [sys.executable, "-m", "sync", "emulator", "--port", "0", "--messages", "5",
               "--faults", "500=0.25", "--latency-ms", "20", "--concurrency-limit", "3"]  # fmt: skip
    async with await anyio.open_process(command, env=cli_env(None, None)) as proc:
        try:
            out = b""
            while out.count(b"\n") < 2:
                out += await proc.stdout.receive()
            base_url = out.split(b"\n", 1)[0].decode().rsplit(" at ", 1)[1].strip()
            async with aiohttp.ClientSession(base_url) as control:
                status, stats = await get_json(control, CONTROL)
            async with aiohttp.ClientSession(base_url, headers=basic_auth(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)) as http:
                async with http.get(LEGACY_LIST) as response:
                    header = response.headers[HEADER]
        finally:
            proc.terminate()
    assert status == 200 and header == "1"
    assert (stats["profile"]["p500"], stats["profile"]["latency"], stats["profile"]["concurrency_limit"]) == (0.25, 0.02, 3)
    assert "injecting faults: 500=0.25,latency-ms=20,concurrency-limit=3" in out.decode()


@pytest.mark.parametrize(("args", "needle"), [
    (("--latency-ms", "-5"), "must be 0 or more milliseconds"),
    (("--concurrency-limit", "0"), "must be a whole number >= 1"),
    (("--concurrency-limit", "two"), "not a whole number"),
])  # fmt: skip
async def test_bad_latency_or_limit_is_one_line_and_exit_2(args, needle):
    """A negative latency or a limit below 1: one line, exit 2, no traceback."""
    result = await sync_cli("emulator", "--port", "0", *args, env=cli_env(None, None))
    err = result.stderr.decode().strip()
    assert result.returncode == 2 and needle in err and "\n" not in err and "Traceback" not in err


async def test_the_gate_answers_n_requests_then_holds_the_rest_until_released(http, emu: Emulator):
    """hold_after(2): two answers, the third waits unanswered (held, not in flight) until release()."""
    emu.faults.hold_after(2)
    assert [(await answer(http, LEGACY_LIST))[0] for _ in range(2)] == [200, 200]
    third = asyncio.ensure_future(answer(http, LEGACY_LIST))
    while not emu.faults.held:
        await asyncio.sleep(0.01)
    assert not third.done() and emu.faults.held == 1 and not emu.faults.in_flight[DEFAULT_ACCOUNT_SID]
    emu.faults.release()
    assert (await third)[0] == 200 and emu.faults.held == 0
    assert (await answer(http, LEGACY_LIST))[0] == 200  # open: nothing is held any more


async def test_the_control_route_drives_the_gate_for_a_client_in_another_process(base_url, http, emu: Emulator):
    """{"hold_after": 1} over the control route: one answer, the next is held (stats say so)
    until {"release": true}; a bad gate command is a 400 and leaves the gate as it was."""
    async with aiohttp.ClientSession(base_url) as control:
        async with control.post(CONTROL, json={"hold_after": 1}) as response:
            assert response.status == 200 and (await response.json())["gate"] == 1
        assert (await answer(http, LEGACY_LIST))[0] == 200
        second = asyncio.ensure_future(answer(http, LEGACY_LIST))
        while not (await get_json(control, CONTROL))[1]["held"]:
            await asyncio.sleep(0.01)
        assert not second.done()
        for bad in ({"hold_after": -1}, {"hold_after": "2"}, {"hold_after": 1, "release": True}):
            async with control.post(CONTROL, json=bad) as response:
                assert response.status == 400
        assert not second.done() and emu.faults.held == 1
        async with control.post(CONTROL, json={"release": True}) as response:
            assert (await response.json())["gate"] is None
        assert (await second)[0] == 200


async def test_a_held_request_whose_client_went_is_dropped_with_no_fault_spent(base_url, http, emu: Emulator):
    """A client killed while its request is held sees no answer, so none is chosen for it: the
    queued 429 and its Retry-After go to the next request, not to the one nobody got."""
    emu.faults.inject("429")
    emu.faults.hold_after(0)
    async with aiohttp.ClientSession(base_url, headers=basic_auth(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)) as gone:
        left = asyncio.ensure_future(answer(gone, LEGACY_LIST))
        while not emu.faults.held:
            await asyncio.sleep(0.01)
        left.cancel()
    emu.faults.release()
    while emu.faults.held:
        await asyncio.sleep(0.01)
    assert emu.faults.injected == {} and emu.faults.requests == 0
    assert (await answer(http, LEGACY_LIST))[0] == 429
    assert emu.faults.retry_after_violations == 0
