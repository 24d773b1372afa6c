"""Fault injection: each fault's wire form in both dialects, probabilities, the rate limit, Retry-After
bookkeeping and the control route, all through real HTTP against the served emulator."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import orjson
import pytest

from sync.emulator import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_API_KEY_SECRET,
    DEFAULT_API_KEY_SID,
    Emulator,
    FaultProfile,
    Faults,
)

from .helpers import LEGACY_LIST, basic_auth, get_json, legacy_message

V1_LIST = "/v1/Messages"
CONTROL = "/_emulator/faults"
DIALECTS = ["legacy", "v1"]


def list_path(dialect: str) -> str:
    return LEGACY_LIST if dialect == "legacy" else V1_LIST


def error_body(dialect: str, status: int, code: int, message: str, context: str | None = None) -> dict:
    """The error body Twilio's API of that dialect sends."""
    if dialect == "legacy":
        return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}
    info = f"https://www.twilio.com/docs/api/errors/{code}"
    return {"errors": [{"code": code, "message": message, "info_url": info, "context": context}]}


async def answer(http: aiohttp.ClientSession, path: str, params: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    async with http.get(path, params=params) as response:
        return response.status, dict(response.headers), await response.json()


async def next_page_params(http: aiohttp.ClientSession, dialect: str) -> tuple[str, dict[str, str] | None]:
    """The request for a list's second page, as a client makes it (so it carries a page token)."""
    status, page = await get_json(http, list_path(dialect), {"PageSize" if dialect == "legacy" else "pageSize": "5"})
    assert status == 200
    if dialect == "legacy":
        return page["next_page_uri"], None
    return V1_LIST, {"pageToken": page["pagination"]["next"]}


# ---------------------------------------------------------------- the spec string


def test_parse_reads_every_item_of_the_spec_format():
    """Every spec key maps onto its field; `_` may stand for `-`; spec() round-trips."""
    spec = (
        "429=0.1,503=0.05,drop=0.03,malformed=0.02,retry-after=1,max-page-size=500,rate-limit=50,"
        "burst=10,slow=0.01,slow-seconds=3,500=0.02,stale_token=0.01"
    )
    profile = FaultProfile.parse(spec)
    assert profile == FaultProfile(
        p429=0.1, p500=0.02, p503=0.05, slow=0.01, slow_seconds=3.0, drop=0.03, malformed=0.02,
        stale_token=0.01, retry_after=1, max_page_size=500, rate_limit=50.0, burst=10,
    )  # fmt: skip
    assert FaultProfile.parse(profile.spec()) == profile
    assert FaultProfile.parse("") == FaultProfile() and not FaultProfile().active


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("429=1.5", "429=1.5"),
        ("drop=-0.1", "drop=-0.1"),
        ("503=nan", "503=nan"),
        ("429=0.6,503=0.6", "add up to 1.2"),
        ("teapot=0.1", "'teapot'"),
        ("drop", "'drop'"),
        ("retry-after=1.5", "'retry-after=1.5'"),
        ("max-page-size=0", "max-page-size=0"),
        ("rate-limit=0", "rate-limit=0"),
        ("burst=3", "burst=3"),
        ("slow-seconds=-1", "slow-seconds=-1"),
        ("429=0.1,429=0.2", "given twice"),
    ],
)
def test_parse_rejects_a_bad_item_naming_it(spec, named):
    """A bad item is a one-line ValueError that names it."""
    with pytest.raises(ValueError) as caught:
        FaultProfile.parse(spec)
    message = str(caught.value)
    assert named in message and "\n" not in message


async def test_an_emulator_without_faults_is_unarmed_but_counts_requests(http, emu: Emulator):
    """The default profile injects nothing, so selection is skipped; Emulator(faults=) sets the profile."""
    assert emu.faults.armed is False
    assert (await answer(http, LEGACY_LIST))[0] == 200 and emu.faults.requests == 1
    emu = Emulator(comms_messages=1, legacy_messages=1, faults=FaultProfile(p500=0.5), fault_seed=3)
    assert emu.faults.armed and emu.faults.profile.p500 == 0.5 and emu.faults.seed == 3


# ---------------------------------------------------------------- each fault on demand, both dialects


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    ("kind", "status", "code", "legacy_message_", "v1_message", "retry_after"),
    [
        ("429", 429, 20429, "Too many requests",
         "Too many requests. Please retry according to the Retry-After response header.", "3"),
        ("503", 503, 20503, "Service unavailable.", "Service unavailable.", "3"),
        ("500", 500, 20500, "Internal server error.", "Internal server error.", None),
    ],
)  # fmt: skip
async def test_injected_errors_have_the_documented_status_body_and_retry_after(
    http, emu: Emulator, dialect, kind, status, code, legacy_message_, v1_message, retry_after
):
    """429 and 503 carry Retry-After (the profile's seconds), 500 none; the body is the API's dialect."""
    emu.faults.profile = FaultProfile(retry_after=3)
    emu.faults.inject(kind)
    got_status, headers, body = await answer(http, list_path(dialect))
    message = legacy_message_ if dialect == "legacy" else v1_message
    assert (got_status, body) == (status, error_body(dialect, status, code, message))
    assert headers.get("Retry-After") == retry_after
    assert emu.faults.injected == {kind: 1}
    assert (await answer(http, list_path(dialect)))[0] == 200  # one injection, one request


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_stale_token_hits_only_a_list_request_carrying_a_token(http, emu: Emulator, dialect):
    """A first page (no token) is served and the injection waits for the next page's request: 400 20001."""
    emu.faults.inject("stale_token")
    path, params = await next_page_params(http, dialect)
    assert emu.faults.injected["stale_token"] == 0
    status, _, body = await answer(http, path, params)
    name = "PageToken" if dialect == "legacy" else "pageToken"
    assert (status, body) == (400, error_body(dialect, 400, 20001, f"Invalid or expired {name}", name))
    assert emu.faults.injected["stale_token"] == 1


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_dropped_connection_sends_half_the_body_then_hangs_up(http, emu: Emulator, dialect):
    """Status and the full Content-Length arrive, the body does not: the client gets a payload error."""
    async with http.get(list_path(dialect)) as response:
        full = await response.read()
    emu.faults.inject("drop")
    with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        async with http.get(list_path(dialect)) as response:
            assert response.status == 200
            assert int(response.headers["Content-Length"]) == len(full)
            await response.read()
    assert emu.faults.injected == {"drop": 1}
    async with http.get(list_path(dialect)) as response:  # the session recovers on a new connection
        assert await response.read() == full


async def test_a_dropped_connection_logs_nothing_on_the_server(http, emu: Emulator, caplog):
    """The deliberate hang-up is not an error to aiohttp: no warning or traceback in the log."""
    caplog.set_level(logging.DEBUG)
    emu.faults.inject("drop", 3)
    for _ in range(3):
        with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
            async with http.get(LEGACY_LIST) as response:
                await response.read()
    await asyncio.sleep(0.05)  # let the server finish its side of the requests
    assert emu.faults.injected["drop"] == 3
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_malformed_body_is_a_200_json_response_that_does_not_parse(http, emu: Emulator, dialect):
    """The real body cut in half, with status 200 and content-type application/json."""
    async with http.get(list_path(dialect)) as response:
        full = await response.read()
    emu.faults.inject("malformed")
    async with http.get(list_path(dialect)) as response:
        assert response.status == 200 and response.content_type == "application/json"
        body = await response.read()
    assert body == full[: len(full) // 2]
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)


async def test_a_slow_response_waits_slow_seconds_then_answers_normally(http, emu: Emulator):
    """slow sleeps slow_seconds before the normal answer."""
    async with http.get(LEGACY_LIST) as response:
        full = await response.read()
    emu.faults.profile = FaultProfile(slow_seconds=0.2)
    emu.faults.inject("slow")
    started = time.monotonic()
    async with http.get(LEGACY_LIST) as response:
        assert response.status == 200 and await response.read() == full
    assert time.monotonic() - started >= 0.2
    assert emu.faults.injected == {"slow": 1}


async def test_drop_and_malformed_wait_for_a_successful_answer(http, emu: Emulator):
    """A 404 cannot be malformed: it is served as is and the injection stays queued for the next success."""
    emu.faults.inject("malformed")
    status, body = await get_json(http, legacy_message("SM" + "0" * 32))
    assert status == 404 and body["code"] == 20404
    assert emu.faults.injected["malformed"] == 0
    async with http.get(legacy_message(emu.legacy_payloads()[0]["sid"])) as response:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(await response.read())
    assert emu.faults.injected["malformed"] == 1


async def test_injections_match_only_paths_containing_path_contains(http, emu: Emulator):
    """path_contains keeps an injection for the requests it names, in order of queueing."""
    emu.faults.inject("503", 2, path_contains="/v1/")
    assert (await answer(http, LEGACY_LIST))[0] == 200
    assert [(await answer(http, V1_LIST))[0] for _ in range(3)] == [503, 503, 200]
    assert emu.faults.stats()["pending"] == []


async def test_faults_come_after_authentication(base_url, emu: Emulator):
    """A bad credential still gets its 401, and the queued fault waits for an authenticated request."""
    emu.faults.inject("503")
    async with aiohttp.ClientSession(base_url, headers=basic_auth(DEFAULT_API_KEY_SID, "wrong")) as session:
        assert (await answer(session, LEGACY_LIST))[0] == 401
    assert emu.faults.requests == 0 and emu.faults.injected["503"] == 0
    async with aiohttp.ClientSession(base_url, headers=basic_auth(DEFAULT_API_KEY_SID, DEFAULT_API_KEY_SECRET)) as session:
        assert (await answer(session, LEGACY_LIST))[0] == 503


async def test_an_injected_error_leaves_the_state_unchanged(http, emu: Emulator):
    """A DELETE answered 500 deletes nothing: error faults never reach the handler."""
    sid = emu.legacy_payloads()[0]["sid"]
    emu.faults.inject("500")
    async with http.delete(legacy_message(sid)) as response:
        assert response.status == 500
    assert (await get_json(http, legacy_message(sid)))[0] == 200


# ---------------------------------------------------------------- probabilities


async def test_probabilities_are_honoured_over_many_requests(http, emu: Emulator):
    """p503=0.3 over 400 requests gives between 20% and 40% 503s, all counted."""
    emu.faults.profile = FaultProfile(p503=0.3)
    url = legacy_message(emu.legacy_payloads()[0]["sid"])
    statuses = [(await answer(http, url))[0] for _ in range(400)]
    assert set(statuses) == {200, 503}
    assert 80 <= statuses.count(503) <= 160
    assert emu.faults.injected == {"503": statuses.count(503)} and emu.faults.requests == 400


async def test_a_seed_reproduces_the_same_faults(http, emu: Emulator):
    """The draws come from random.Random(seed): reseeding replays the same sequence of outcomes."""
    emu.faults.profile = FaultProfile(p429=0.2, p500=0.2, retry_after=0)
    url = legacy_message(emu.legacy_payloads()[0]["sid"])
    emu.faults.reseed(11)
    first = [(await answer(http, url))[0] for _ in range(60)]
    emu.faults.reseed(11)
    assert [(await answer(http, url))[0] for _ in range(60)] == first
    assert {429, 500, 200} == set(first)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_random_stale_token_spares_requests_without_a_token(http, emu: Emulator, dialect):
    """stale_token=1 fails every next-page request and no first-page request."""
    path, params = await next_page_params(http, dialect)
    emu.faults.profile = FaultProfile(stale_token=1.0)
    assert [(await answer(http, list_path(dialect)))[0] for _ in range(5)] == [200] * 5
    assert [(await answer(http, path, params))[0] for _ in range(5)] == [400] * 5
    assert emu.faults.injected == {"stale_token": 5}


# ---------------------------------------------------------------- page size, rate limit


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_pages_above_max_page_size_answer_500(http, emu: Emulator, dialect):
    """PageSize/pageSize above the threshold is a 500 (20500); at or below it the page is served."""
    emu.faults.profile = FaultProfile(max_page_size=100)
    name = "PageSize" if dialect == "legacy" else "pageSize"
    status, headers, body = await answer(http, list_path(dialect), {name: "101"})
    assert (status, body) == (500, error_body(dialect, 500, 20500, "Internal server error."))
    assert "Retry-After" not in headers
    assert (await answer(http, list_path(dialect), {name: "100"}))[0] == 200
    assert emu.faults.injected == {"page_size": 1}


async def test_the_token_bucket_refuses_once_the_burst_is_spent_and_refills(http, emu: Emulator):
    """burst requests pass, the next is 429 with Retry-After = ceil(time to a token); after it, one passes."""
    emu.faults.profile = FaultProfile(rate_limit=2.0, burst=3)
    assert [(await answer(http, LEGACY_LIST))[0] for _ in range(3)] == [200] * 3
    status, headers, body = await answer(http, LEGACY_LIST)
    assert (status, body) == (429, error_body("legacy", 429, 20429, "Too many requests"))
    assert headers["Retry-After"] == "1"
    await asyncio.sleep(int(headers["Retry-After"]))
    assert (await answer(http, LEGACY_LIST))[0] == 200
    assert emu.faults.injected == {"rate_limit": 1} and emu.faults.retry_after_violations == 0


async def test_the_token_bucket_is_per_credential(base_url, http, emu: Emulator):
    """Another credential of the same account has its own bucket."""
    emu.faults.profile = FaultProfile(rate_limit=0.5, burst=1)
    assert [(await answer(http, LEGACY_LIST))[0] for _ in range(2)] == [200, 429]
    async with aiohttp.ClientSession(base_url, headers=basic_auth(DEFAULT_API_KEY_SID, DEFAULT_API_KEY_SECRET)) as session:
        assert (await answer(session, LEGACY_LIST))[0] == 200


# ---------------------------------------------------------------- Retry-After violations


async def test_retrying_before_retry_after_is_a_violation(http, emu: Emulator):
    """The same request from the same credential before the deadline counts once, with details."""
    emu.faults.profile = FaultProfile(retry_after=5)
    emu.faults.inject("503")
    assert (await answer(http, LEGACY_LIST, {"PageSize": "3"}))[0] == 503
    assert (await answer(http, V1_LIST))[0] == 200  # another request is no retry
    assert (await answer(http, LEGACY_LIST, {"PageSize": "3"}))[0] == 200
    assert (await answer(http, LEGACY_LIST, {"PageSize": "3"}))[0] == 200  # the deadline is spent
    assert emu.faults.retry_after_violations == 1
    [violation] = emu.faults.violations
    assert violation["credential"] == DEFAULT_ACCOUNT_SID
    assert violation["method"] == "GET" and violation["path"] == f"{LEGACY_LIST}?PageSize=3"
    assert 0 < violation["seconds_early"] <= 5


async def test_retrying_after_retry_after_is_no_violation(http, emu: Emulator):
    """A client that waits the Retry-After seconds is within the rules."""
    emu.faults.inject("429")
    status, headers, _ = await answer(http, V1_LIST)
    assert status == 429
    await asyncio.sleep(int(headers["Retry-After"]))
    assert (await answer(http, V1_LIST))[0] == 200
    assert emu.faults.retry_after_violations == 0 and emu.faults.violations == []


async def test_the_deadline_is_strict_on_the_faults_clock(http, emu: Emulator):
    """On the injected clock, a retry a hair before the deadline is a violation and one at it is not."""
    now = [100.0]
    emu.faults = Faults(FaultProfile(retry_after=2), clock=lambda: now[0])
    emu.faults.inject("503")
    assert (await answer(http, V1_LIST))[0] == 503
    now[0] += 1.999
    assert (await answer(http, V1_LIST))[0] == 200
    assert emu.faults.retry_after_violations == 1
    emu.faults.inject("503")
    assert (await answer(http, V1_LIST))[0] == 503
    now[0] += 2.0
    assert (await answer(http, V1_LIST))[0] == 200
    assert emu.faults.retry_after_violations == 1


# ---------------------------------------------------------------- the control route


async def test_the_control_route_sets_the_profile_queues_faults_and_resets(base_url, http, emu: Emulator):
    """GET gives stats(), POST takes a profile spec, an injection or a reset; no credentials needed."""
    async with aiohttp.ClientSession(base_url) as control:
        async with control.post(CONTROL, json={"profile": "503=0.5,retry-after=4"}) as response:
            assert response.status == 200
        assert emu.faults.profile == FaultProfile(p503=0.5, retry_after=4)
        async with control.post(CONTROL, json={"profile": "", "inject": "500", "times": 1, "path_contains": "/v1/"}):
            pass
        assert (await answer(http, LEGACY_LIST))[0] == 200
        assert (await answer(http, V1_LIST))[0] == 500
        status, stats = await get_json(control, CONTROL)
        assert status == 200 and stats == orjson.loads(orjson.dumps(emu.faults.stats()))
        assert stats["requests"] == 2 and stats["injected"] == {"500": 1} and stats["spec"] == ""
        async with control.post(CONTROL, json={"reset": True}) as response:
            assert (await response.json())["requests"] == 0
    assert emu.faults.requests == 0 and not emu.faults.injected
    assert sum(emu.request_counts.values()) == 2  # the control requests are not among them


@pytest.mark.parametrize(
    "body",
    [{"profile": "429=2"}, {"inject": "teapot"}, {"times": 2}, {"colour": "red"}, ["reset"], {"inject": "500", "times": 0}],
)
async def test_the_control_route_rejects_a_bad_command(base_url, emu: Emulator, body):
    """A bad command is a 400 with a message, and changes nothing."""
    async with aiohttp.ClientSession(base_url) as control, control.post(CONTROL, json=body) as response:
        assert response.status == 400
        assert (await response.json())["message"]
    assert emu.faults.profile == FaultProfile() and emu.faults.stats()["pending"] == []


async def test_the_control_route_is_never_faulted(base_url, emu: Emulator):
    """Even with every request failing, the control route answers."""
    emu.faults.profile = FaultProfile(p500=1.0)
    async with aiohttp.ClientSession(base_url) as control:
        status, stats = await get_json(control, CONTROL)
    assert status == 200 and stats["profile"]["p500"] == 1.0 and emu.faults.requests == 0
