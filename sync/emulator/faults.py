"""Fault injection: the emulator misbehaving as a real API does, by probability or on demand.

A `FaultProfile` says how often each fault happens; `Faults` (living on the Emulator as
`emu.faults`) picks them per request, counts what it injected and watches whether clients
honour Retry-After. Faults apply only to the authenticated API routes, after authentication
(a bad credential always gets its 401). Two settings shape every request, around the rest
(`Faults.serve`):

    latency           every request sleeps `latency` seconds before it is answered, whatever else
                      happens to it (a fault's answer included): the round trip of a real API
    concurrency_limit a request arriving while that many of its credential's are in flight is
                      refused (below), after the latency, before anything else is chosen

Then fault selection (`Faults.apply`), in this order:

    1. the per-credential token bucket (`rate_limit`, `burst`): an empty bucket -> 429
    2. on-demand injections queued with `Faults.inject`, first queued first
    3. `max_page_size`: a list request whose PageSize / pageSize exceeds it -> 500
    4. one seeded random draw among the probabilities, which are exclusive outcomes

What each fault puts on the wire (error bodies in the dialect of the API addressed, see errors.py):

    429, rate_limit   429, code 20429, "Too many requests" (legacy) or "Too many requests. Please
                      retry according to the Retry-After response header." (v1), Retry-After: N
    500, page_size    500, code 20500, "Internal server error."
    503               503, code 20503, "Service unavailable.", Retry-After: N
    stale_token       400, code 20001, "Invalid or expired PageToken" (legacy, context PageToken) or
                      "Invalid or expired pageToken" (v1, context pageToken); only list requests
                      that carry a token can get it
    concurrency       429, code 20429, the same bodies as 429, and NO Retry-After: whether
                      api.twilio.com sends one on a concurrency 429 is undocumented
    slow              the normal answer, after sleeping `slow_seconds`
    drop              the normal status and headers with the full Content-Length, the first half of
                      the body, then the connection is closed: the client sees a payload error
    malformed         the normal status and headers, the body cut in half: not valid JSON

N is `retry_after` for injected 429/503 and ceil(seconds until the bucket holds a token) for
the rate limit. The error faults never reach the handler, so they change no state; `drop` and
`malformed` wrap the real answer (a create or delete has happened) and apply only to a
successful answer with a body: on a request that has none, an on-demand one stays queued and
a random one is not counted.

Retry-After rule: answering a request with Retry-After records a deadline for (credential
username, method, path + query as sent). The next identical request from that credential is
checked against it: arriving before the deadline is one violation (counted, with details in
`violations`); either way the deadline is then spent. Times come from `clock` (monotonic),
taken when the request reaches fault selection, before any slow sleep; there is no tolerance.

In flight: every authenticated request of a credential counts from its arrival until it is
answered (its latency sleep and a refused one included). `in_flight` holds the counts now,
`peak_in_flight` the most seen at once since the last reset (both in `stats()`); the server
sends each request's count, this one included, as `Twilio-Concurrent-Requests`, the header
Twilio documents for seeing how close an account is to its concurrency limit.

The gate (for tests that kill or signal a client): `hold_after(n)` answers the next n API
requests, then holds every later one unanswered, before anything above, until `release()` or
another `hold_after`. A held request is not in flight (it has not reached the API yet); `held`
counts them, and one whose client has gone by its release is dropped unanswered. A client killed while one of its requests is held surely had work left: it cannot
have finished first, however loaded the machine. The control route drives the gate too
({"hold_after": n}, {"release": true}; `stats()` says how many are `held`), for a client in
another process than the emulator's (the bench's resume phase).

Selection costs one attribute test per request while the profile is empty, nothing is
queued and no deadline is pending (`Faults.armed` is false). The emulator runs on one event
loop, so no locks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from aiohttp import payload, web

from . import errors

KINDS = ("429", "500", "503", "slow", "drop", "malformed", "stale_token")
# Spec key -> field, for the probabilities in their order of the random draw.
_PROBABILITIES = {
    "429": "p429", "500": "p500", "503": "p503", "slow": "slow", "drop": "drop",
    "malformed": "malformed", "stale-token": "stale_token",
}  # fmt: skip
_SETTINGS = {
    "slow-seconds": "slow_seconds", "retry-after": "retry_after", "max-page-size": "max_page_size",
    "rate-limit": "rate_limit", "burst": "burst", "latency-ms": "latency", "concurrency-limit": "concurrency_limit",
}  # fmt: skip
_WHOLE = ("retry_after", "max_page_size", "burst", "concurrency_limit")
# Fields whose spec value is in another unit: latency is written in milliseconds (as the bench's flag).
_SCALE = {"latency": 1000.0}
_SPEC_KEYS = {**_PROBABILITIES, **_SETTINGS}
_KEY_OF = {name: key for key, name in _SPEC_KEYS.items()}
_KIND_OF = {"p429": "429", "p500": "500", "p503": "503", "stale_token": "stale_token"}
# Twilio documents it as how close the account is to its concurrency limit.
CONCURRENT_HEADER = "Twilio-Concurrent-Requests"
MAX_VIOLATION_DETAILS = 100  # the count stays exact; only the details are capped


@dataclass(frozen=True)
class FaultProfile:
    """How often each fault happens; the default injects nothing."""

    p429: float = 0.0  # per request: 429 (20429) with Retry-After
    p500: float = 0.0  # 500 (20500)
    p503: float = 0.0  # 503 (20503) with Retry-After
    slow: float = 0.0  # sleep slow_seconds, then answer normally
    slow_seconds: float = 2.0
    drop: float = 0.0  # headers + full Content-Length, half the body, then the connection closes
    malformed: float = 0.0  # the real status, the body cut in half (invalid JSON)
    stale_token: float = 0.0  # a list request carrying a page token: 400 (20001)
    retry_after: int = 1  # delta-seconds in Retry-After of injected 429/503
    max_page_size: int | None = None  # list requests asking for more per page: 500
    rate_limit: float | None = None  # per-credential token bucket, requests per second
    burst: int | None = None  # bucket size; default max(1, int(rate_limit))
    latency: float = 0.0  # seconds every request waits before its answer, on top of any fault
    concurrency_limit: int | None = None  # a credential's requests in flight beyond it: 429 (20429)

    def __post_init__(self) -> None:
        for key, name in _PROBABILITIES.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{key}={value}: a probability must be within [0, 1]")
        total = sum(getattr(self, name) for name in _PROBABILITIES.values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"the fault probabilities add up to {total:g}; at most 1 (each request gets one fault)")
        if not (isinstance(self.slow_seconds, (int, float)) and 0.0 <= self.slow_seconds < math.inf):
            raise ValueError(f"slow-seconds={self.slow_seconds}: must be a finite number of seconds >= 0")
        if not (_is_int(self.retry_after) and self.retry_after >= 0):
            raise ValueError(f"retry-after={self.retry_after}: must be a whole number of seconds >= 0")
        if self.max_page_size is not None and not (_is_int(self.max_page_size) and self.max_page_size >= 1):
            raise ValueError(f"max-page-size={self.max_page_size}: must be a whole number >= 1")
        if self.rate_limit is not None and not (
            isinstance(self.rate_limit, (int, float)) and 0.0 < self.rate_limit < math.inf
        ):
            raise ValueError(f"rate-limit={self.rate_limit}: must be a number of requests per second > 0")
        if self.burst is not None:
            if not (_is_int(self.burst) and self.burst >= 1):
                raise ValueError(f"burst={self.burst}: must be a whole number >= 1")
            if self.rate_limit is None:
                raise ValueError(f"burst={self.burst}: needs rate-limit")
        if not (isinstance(self.latency, (int, float)) and 0.0 <= self.latency < math.inf):
            raise ValueError(f"latency-ms={self.latency * 1000:g}: must be a finite number of milliseconds >= 0")
        if self.concurrency_limit is not None and not (_is_int(self.concurrency_limit) and self.concurrency_limit >= 1):
            raise ValueError(f"concurrency-limit={self.concurrency_limit}: must be a whole number >= 1")

    @classmethod
    def parse(cls, spec: str) -> FaultProfile:
        """A profile from `name=value` items separated by commas, e.g. "429=0.1,retry-after=2,rate-limit=50".

        Names are the spec keys of the fields ("429", "stale-token", "max-page-size", ...;
        `_` may stand for `-`); "latency-ms" is in milliseconds. An empty spec is the default profile. Raises ValueError
        naming the bad item.
        """
        values: dict[str, Any] = {}
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, raw = item.partition("=")
            key, raw = key.strip().lower().replace("_", "-"), raw.strip()
            if not sep or not raw:
                raise ValueError(f"fault item {item!r}: expected name=value")
            name = _SPEC_KEYS.get(key)
            if name is None:
                raise ValueError(f"fault item {item!r}: unknown name {key!r} (known: {', '.join(_SPEC_KEYS)})")
            if name in values:
                raise ValueError(f"fault item {item!r}: {key} is given twice")
            value = _number(item, raw, whole=name in _WHOLE)
            values[name] = value / _SCALE[name] if name in _SCALE else value
        return cls(**values)

    def spec(self) -> str:
        """The spec string `parse` turns back into this profile (only the non-default items)."""
        default = FaultProfile()
        return ",".join(
            f"{_KEY_OF[f.name]}={_spec_value(f.name, getattr(self, f.name))}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        )

    @property
    def bucket_size(self) -> int:
        """Tokens a full bucket holds."""
        return self.burst if self.burst is not None else max(1, int(self.rate_limit or 0))

    @property
    def active(self) -> bool:
        """Whether fault selection has anything to do (latency and the concurrency limit apply
        around it, see `Faults.serve`)."""
        return (
            self.max_page_size is not None
            or self.rate_limit is not None
            or any(getattr(self, name) for name in _PROBABILITIES.values())
        )


def _spec_value(name: str, value: object) -> str:
    if name in _SCALE:
        return f"{value * _SCALE[name]:.12g}"  # type: ignore[operator]
    return str(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(item: str, raw: str, whole: bool) -> float | int:
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"fault item {item!r}: {raw!r} is not {kind}") from None
    if not whole and not math.isfinite(value):
        raise ValueError(f"fault item {item!r}: {raw!r} is not a finite number")
    return value


@dataclass(eq=False)
class _Injection:
    kind: str
    times: int
    path_contains: str | None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(KINDS)})")
        if not (_is_int(self.times) and self.times >= 1):
            raise ValueError(f"times={self.times!r}: must be a whole number >= 1")
        if self.path_contains is not None and not isinstance(self.path_contains, str):
            raise TypeError("path_contains must be a string")


class Faults:
    """Lives on the Emulator as `emu.faults`; thread-safe enough for the single event loop."""

    def __init__(self, profile: FaultProfile = FaultProfile(), seed: int = 0, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.seed = seed
        self._rng = random.Random(seed)
        self._queue: list[_Injection] = []
        self._deadlines: dict[tuple[str, str, str], float] = {}
        self._latest_deadline = -math.inf
        self._buckets: dict[str, tuple[float, float]] = {}  # credential -> (tokens, when)
        self.in_flight: Counter[str] = Counter()  # credential -> requests arrived and not yet answered
        self.peak_in_flight: dict[str, int] = {}  # credential -> most in flight at once since the reset
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.retry_after_violations = 0
        self.violations: list[dict] = []
        self.armed = False
        self.held = 0  # requests waiting at the gate
        self._allowance: int | None = None  # requests the gate still lets through; None: open
        self._gate_moved = asyncio.Event()
        self.profile = profile

    # ------------------------------------------------------------ configuration

    @property
    def profile(self) -> FaultProfile:
        return self._profile

    @profile.setter
    def profile(self, profile: FaultProfile) -> None:
        self._profile = profile
        self._buckets.clear()  # a new rate limit starts with full buckets
        # (upper bound, kind) for one uniform draw in [0, 1); kinds with probability 0 left out.
        bands, upper = [], 0.0
        for name in _PROBABILITIES.values():
            if getattr(profile, name):
                upper += getattr(profile, name)
                bands.append((upper, _KIND_OF.get(name, name)))
        self._bands = bands
        self._profile_active = profile.active
        self._rearm()

    def inject(self, kind: str, times: int = 1, *, path_contains: str | None = None) -> None:
        """The next `times` matching API requests get this fault, whatever the probabilities.

        A request matches when its path + query contains `path_contains` (if given);
        "stale_token" matches only list requests carrying a page token.
        """
        self._queue.append(_Injection(kind, times, path_contains))
        self._rearm()

    @property
    def latest_deadline(self) -> float:
        """When (on `clock`) the last Retry-After given so far ends; -inf when none was given."""
        return self._latest_deadline

    def hold_after(self, n: int) -> None:
        """Answer the next `n` API requests, then hold every later one until release() or another
        hold_after(); requests held now count against the new `n`."""
        if n < 0:
            raise ValueError(f"hold_after({n}): must be 0 or more")
        self._allowance = n
        self._move_gate()

    def release(self) -> None:
        """Open the gate: every held request goes on, and no later one is held."""
        self._allowance = None
        self._move_gate()

    def _move_gate(self) -> None:
        self._gate_moved.set()
        self._gate_moved = asyncio.Event()

    async def _through_gate(self) -> None:
        while self._allowance is not None and self._allowance <= 0:
            self.held += 1
            try:
                await self._gate_moved.wait()
            finally:
                self.held -= 1
        if self._allowance is not None:
            self._allowance -= 1

    def reseed(self, seed: int) -> None:
        """Restart the random draws from `seed`."""
        self.seed = seed
        self._rng = random.Random(seed)

    def reset_counts(self) -> None:
        """Zero the counters and forget pending Retry-After deadlines: a fresh measurement starts.
        The peaks start again from the requests in flight now."""
        self.peak_in_flight = {credential: n for credential, n in self.in_flight.items() if n}
        self.injected.clear()
        self.requests = 0
        self.retry_after_violations = 0
        self.violations.clear()
        self._deadlines.clear()
        self._latest_deadline = -math.inf
        self._rearm()

    def stats(self) -> dict:
        """A JSON-able snapshot: profile, counts, violations and queued injections."""
        return {
            "profile": dataclasses.asdict(self._profile),
            "spec": self._profile.spec(),
            "seed": self.seed,
            "requests": self.requests,
            "injected": dict(self.injected),
            "retry_after_violations": self.retry_after_violations,
            "violations": list(self.violations),
            "pending": [dataclasses.asdict(i) for i in self._queue],
            "in_flight": {credential: n for credential, n in self.in_flight.items() if n},
            "peak_in_flight": dict(self.peak_in_flight),
            "held": self.held,
            "gate": self._allowance,  # answers the gate still lets through; None: open
        }

    def command(self, body: object) -> dict:
        """Apply a control request body (the `POST /_emulator/faults` JSON); return `stats()`.

        Keys: "reset": true (first), "seed": int, "profile": spec string, "inject": kind with
        optional "times" and "path_contains", then the gate: "hold_after": n or "release": true
        (not both). All or nothing: a bad key, value or combination raises ValueError (TypeError
        for a value of the wrong JSON type) and changes nothing.
        """
        if not isinstance(body, Mapping):
            raise TypeError("expected a JSON object")
        unknown = set(body) - {"reset", "seed", "profile", "inject", "times", "path_contains", "hold_after", "release"}
        if unknown:
            raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
        reset, seed, spec = body.get("reset", False), body.get("seed"), body.get("profile")
        if not isinstance(reset, bool):
            raise TypeError("reset must be true or false")
        if seed is not None and not _is_int(seed):
            raise TypeError("seed must be an integer")
        if spec is not None and not isinstance(spec, str):
            raise TypeError('profile must be a spec string, e.g. "429=0.1,retry-after=2"')
        profile = FaultProfile.parse(spec) if spec is not None else None
        injection = None
        if "inject" in body:
            injection = _Injection(body["inject"], body.get("times", 1), body.get("path_contains"))
        elif "times" in body or "path_contains" in body:
            raise ValueError("times and path_contains go with inject")
        hold, release = body.get("hold_after"), body.get("release", False)
        if hold is not None and not _is_int(hold):
            raise TypeError("hold_after must be an integer")
        if hold is not None and hold < 0:
            raise ValueError(f"hold_after must be 0 or more, got {hold}")
        if not isinstance(release, bool):
            raise TypeError("release must be true or false")
        if hold is not None and release:
            raise ValueError("hold_after and release do not go together")
        if reset:
            self.reset_counts()
        if seed is not None:
            self.reseed(seed)
        if profile is not None:
            self.profile = profile
        if injection is not None:
            self._queue.append(injection)
            self._rearm()
        if hold is not None:
            self.hold_after(hold)
        if release:
            self.release()
        return self.stats()

    # ------------------------------------------------------------ per request

    async def serve(
        self,
        request: web.Request,
        credential: str,
        listing: bool,
        handler: Callable[[int], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Answer an authenticated API request: count it in flight, wait the latency, refuse it
        over the concurrency limit, else through fault selection when armed. `handler(n)` gives
        the real answer, n being the credential's requests in flight at this one's arrival, this
        one included; an error's answer gets n as CONCURRENT_HEADER here."""
        if self._allowance is not None:
            await self._through_gate()
            if request.transport is None:
                # Its client went while it was held (a test killed it): nothing happens to it, so
                # no injected fault is spent and no Retry-After is recorded for an answer nobody got.
                return web.Response(status=499)
        in_flight = self.in_flight
        in_flight[credential] += 1
        n = in_flight[credential]
        if n > self.peak_in_flight.get(credential, 0):
            self.peak_in_flight[credential] = n
        try:
            profile = self._profile
            if profile.latency:
                await asyncio.sleep(profile.latency)
            if profile.concurrency_limit is not None and n > profile.concurrency_limit:
                self.requests += 1
                self.injected["concurrency"] += 1
                raise errors.ApiError(429, errors.TOO_MANY_REQUESTS, _too_many(request))
            answer = functools.partial(handler, n)
            if self.armed:
                return await self.apply(request, credential, listing, answer)
            self.requests += 1
            return await answer()
        except errors.ApiError as err:
            err.headers = {**(err.headers or {}), CONCURRENT_HEADER: str(n)}
            raise
        finally:
            in_flight[credential] -= 1

    def _rearm(self) -> None:
        self.armed = self._profile_active or bool(self._queue) or bool(self._deadlines)

    async def apply(
        self,
        request: web.Request,
        credential: str,
        listing: bool,
        handler: Callable[[], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Answer an authenticated API request, perhaps with a fault; `handler` gives the real answer."""
        now = self.clock()
        self.requests += 1
        key = (credential, request.method, request.raw_path)
        if self._deadlines:
            self._check_deadline(key, now)
        profile = self._profile
        if profile.rate_limit is not None:
            wait = self._take_token(credential, profile, now)
            if wait:
                self._refuse(request, key, now, "rate_limit", 429, math.ceil(wait))
        claimed = self._claim(request, listing) if self._queue else None
        kind = claimed.kind if claimed is not None else self._pick(request, listing)
        if kind is None:
            return await handler()
        if kind in ("drop", "malformed"):
            return await self._spoil(request, kind, claimed, handler)
        return await self._instead(request, key, now, kind, handler)

    def _pick(self, request: web.Request, listing: bool) -> str | None:
        """The fault no queued injection chose: a list request over `max_page_size` gets a 500
        (before any draw), else the seeded random draw, if it lands on a band."""
        profile = self._profile
        if listing and profile.max_page_size is not None:
            size = request.query.get("PageSize") or request.query.get("pageSize")
            if size is not None and size.isdigit() and int(size) > profile.max_page_size:
                self.injected["page_size"] += 1
                raise errors.ApiError(500, errors.INTERNAL_ERROR, "Internal server error.")
        if not self._bands:
            return None
        draw = self._rng.random()
        for upper, band in self._bands:
            if draw < upper:
                # A stale token needs a token: the draw is spent, and the request answered normally.
                return band if band != "stale_token" or _has_token(request, listing) else None
        return None

    async def _instead(
        self,
        request: web.Request,
        key: tuple[str, str, str],
        now: float,
        kind: str,
        handler: Callable[[], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """A fault that answers in the real answer's place (an error), or delays it (`slow`)."""
        profile = self._profile
        if kind == "429":
            self._refuse(request, key, now, "429", 429, profile.retry_after)
        if kind == "503":
            self._refuse(request, key, now, "503", 503, profile.retry_after)
        if kind == "500":
            self.injected["500"] += 1
            raise errors.ApiError(500, errors.INTERNAL_ERROR, "Internal server error.")
        if kind == "stale_token":
            self.injected["stale_token"] += 1
            name = "pageToken" if errors.is_comms(request.path) else "PageToken"
            raise errors.bad_request(f"Invalid or expired {name}", name)
        # "slow", the one kind of KINDS left: drop and malformed spoil the real answer (_spoil).
        self.injected["slow"] += 1
        await asyncio.sleep(profile.slow_seconds)
        return await handler()

    async def _spoil(
        self,
        request: web.Request,
        kind: str,
        claimed: _Injection | None,
        handler: Callable[[], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """drop / malformed: the real answer, spoiled, if it is a success with a body; else the
        real answer as it is, and an on-demand injection's use given back."""
        try:
            response = await handler()
        except BaseException:
            self._give_back(claimed)
            raise
        body = await _body(response)
        if not body or not 200 <= response.status < 300:
            self._give_back(claimed)
            return response
        self.injected[kind] += 1
        if kind == "malformed":
            assert isinstance(response, web.Response)  # _body() returned bytes
            response.body = body[: len(body) // 2]
            return response
        return await _drop(request, response, body)

    def _check_deadline(self, key: tuple[str, str, str], now: float) -> None:
        if now >= self._latest_deadline:  # every deadline has passed: nothing left to watch
            self._deadlines.clear()
            self._rearm()
            return
        deadline = self._deadlines.pop(key, None)
        if deadline is not None and now < deadline:
            self.retry_after_violations += 1
            if len(self.violations) < MAX_VIOLATION_DETAILS:
                credential, method, path = key
                self.violations.append(
                    {"credential": credential, "method": method, "path": path, "seconds_early": round(deadline - now, 3)}
                )

    def _take_token(self, credential: str, profile: FaultProfile, now: float) -> float:
        """Take a token from the credential's bucket: 0.0, or the seconds until one is there."""
        rate, size = profile.rate_limit or 1.0, profile.bucket_size
        tokens, then = self._buckets.get(credential, (float(size), now))
        tokens = min(float(size), tokens + (now - then) * rate)
        if tokens >= 1.0:
            self._buckets[credential] = (tokens - 1.0, now)
            return 0.0
        self._buckets[credential] = (tokens, now)
        return (1.0 - tokens) / rate

    def _refuse(self, request: web.Request, key: tuple[str, str, str], now: float, kind: str, status: int, seconds: int) -> NoReturn:
        """Raise a 429 or 503 with Retry-After, remembering when the client may come back."""
        self.injected[kind] += 1
        self._deadlines[key] = deadline = now + seconds
        self._latest_deadline = max(self._latest_deadline, deadline)
        self.armed = True
        if status == 429:
            code, message = errors.TOO_MANY_REQUESTS, _too_many(request)
        else:
            code, message = errors.SERVICE_UNAVAILABLE, "Service unavailable."
        raise errors.ApiError(status, code, message, headers={"Retry-After": str(seconds)})

    def _claim(self, request: web.Request, listing: bool) -> _Injection | None:
        """Take one use of the first queued injection this request matches."""
        for i, entry in enumerate(self._queue):
            if entry.path_contains is not None and entry.path_contains not in request.raw_path:
                continue
            if entry.kind == "stale_token" and not _has_token(request, listing):
                continue
            entry.times -= 1
            if entry.times == 0:
                del self._queue[i]
                self._rearm()
            return entry
        return None

    def _give_back(self, entry: _Injection | None) -> None:
        """Return an injection's use that found nothing to act on."""
        if entry is None:
            return
        entry.times += 1
        if not any(queued is entry for queued in self._queue):
            self._queue.insert(0, entry)
            self._rearm()


def _too_many(request: web.Request) -> str:
    """The message of a 429 (20429) in the dialect of the API addressed."""
    if errors.is_comms(request.path):
        return "Too many requests. Please retry according to the Retry-After response header."
    return "Too many requests"


def _has_token(request: web.Request, listing: bool) -> bool:
    return listing and bool(request.query.get("PageToken") or request.query.get("pageToken"))


async def _body(response: web.StreamResponse) -> bytes | None:
    """A plain response's body bytes; None for a streamed one."""
    if not isinstance(response, web.Response):
        return None
    body = response.body
    if isinstance(body, payload.Payload):
        return bytes(await body.as_bytes())
    return bytes(body) if body is not None else None


async def _drop(request: web.Request, response: web.StreamResponse, body: bytes) -> web.StreamResponse:
    """Send the status, the headers with the full Content-Length and half the body, then hang up.

    `close()` rather than `abort()`: it flushes what was written, so the client reliably
    gets headers plus a short body. aiohttp then meets a closed transport when it finishes
    the response, which it takes as the client going away, quietly.
    """
    stream = web.StreamResponse(status=response.status, reason=response.reason, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    transport = request.transport
    if transport is not None:
        transport.close()
    return stream
