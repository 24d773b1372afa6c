"""The Twilio client's decisions over a transport of our own (transports.Transport), with no
network: what it sends, what it asks again, what it refuses, and whose transport it closes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import pytest

from sync import errors, http
from sync.config import Secret, TwilioSettings
from sync.retry import Backoff

BASE = "https://api.twilio.example"
ACCOUNT = TwilioSettings(account_sid="AC" + "0" * 32, username="AC" + "0" * 32, password=Secret("token"),
                         comms_base_url=BASE, api_base_url=BASE)
NO_WAIT = Backoff(attempts=3, base=0.0, cap=0.0)  # retries at once: the tests count them, not time them


class Answer:
    """One canned response, as transports.Response: status and headers first, the body on read()."""

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    async def read(self) -> bytes:
        return self.body


class Script:
    """A transport that hands out its answers in order and remembers each request."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.closed = False

    @asynccontextmanager
    async def get(self, url: str, headers: Mapping[str, str]) -> AsyncIterator[Answer]:
        self.requests.append((url, dict(headers)))
        yield self.answers.pop(0)

    async def close(self) -> None:
        self.closed = True


async def test_a_get_carries_the_credentials_in_its_authorization_header():
    """A GET goes to the base URL with Basic auth and our User-Agent, and its JSON comes back."""
    script = Script(Answer(200, b'{"messages": []}'))
    async with http.TwilioClient(ACCOUNT, transport=script) as client:
        body = await client.get_json("api", "/2010-04-01/Accounts/x/Messages.json")
    assert body == {"messages": []}
    ((url, headers),) = script.requests
    assert url == BASE + "/2010-04-01/Accounts/x/Messages.json"
    assert headers["Authorization"] == http.basic_authorization(ACCOUNT.username, ACCOUNT.password).reveal()
    assert headers["User-Agent"] == "twilio-archive"


async def test_a_503_is_asked_again_and_the_next_answer_is_used():
    """A 5xx is retryable: the client asks again and returns the answer that worked."""
    script = Script(Answer(503, b"busy"), Answer(200, b'{"ok": true}'))
    async with http.TwilioClient(ACCOUNT, transport=script, retry=NO_WAIT) as client:
        assert await client.get_json("api", "/x.json") == {"ok": True}
    assert len(script.requests) == 2


async def test_a_401_is_fatal_at_once():
    """Refused credentials are not asked again: one request, a FatalSourceError naming the status."""
    script = Script(Answer(401, b'{"code": 20003, "message": "Authenticate"}'), Answer(200, b"{}"))
    async with http.TwilioClient(ACCOUNT, transport=script, retry=NO_WAIT) as client:
        with pytest.raises(errors.FatalSourceError) as raised:
            await client.get_json("api", "/x.json")
    assert raised.value.status == 401
    assert len(script.requests) == 1


async def test_a_transport_given_to_the_client_is_left_to_its_giver():
    """The client closes only a transport it made: the one it was given stays open after its block."""
    script = Script()
    async with http.TwilioClient(ACCOUNT, transport=script):
        pass
    assert not script.closed
