"""The official twilio SDK, pointed at the emulator, pages the legacy list as it would Twilio's."""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from sync.emulator import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, Emulator
from sync.emulator.formats import parse_rfc2822


class EmulatorHttpClient(TwilioHttpClient):
    """Forward every SDK request to base_url, keeping Twilio's path and query."""

    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        self._target = urlsplit(base_url)

    def request(self, method, url, *args, **kwargs):
        u = urlsplit(url)
        url = urlunsplit((self._target.scheme, self._target.netloc, u.path, u.query, u.fragment))
        return super().request(method, url, *args, **kwargs)


def _stream_sids(base_url: str, **filters) -> list[str]:
    http_client = EmulatorHttpClient(base_url)
    try:
        client = Client(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, http_client=http_client)
        return [m.sid for m in client.messages.stream(page_size=7, **filters)]
    finally:
        http_client.session.close()


async def test_sdk_streams_the_whole_list_with_page_size_7(base_url, emu: Emulator):
    """client.messages.stream(page_size=7) follows next_page_uri to the end and sees every SID once."""
    # The SDK is synchronous: run it in a thread so this loop keeps serving it.
    sids = await asyncio.to_thread(_stream_sids, base_url)
    assert sids == [m["sid"] for m in emu.legacy_payloads()]
    assert len(set(sids)) == 400
    assert emu.request_counts["legacy_list"] == -(-400 // 7)


async def test_sdk_date_sent_filter_sends_a_datetime_and_gets_that_day(base_url, emu: Emulator):
    """The SDK's date_sent datetime (sent as YYYY-MM-DDTHH:MM:SSZ) selects that GMT day."""
    sent = [m for m in emu.legacy_payloads() if m["date_sent"]]
    ms = parse_rfc2822(sent[len(sent) // 3]["date_sent"])
    day = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(hour=0, minute=0, second=0)
    sids = await asyncio.to_thread(_stream_sids, base_url, date_sent=day)
    expected = [m["sid"] for m in sent if parse_rfc2822(m["date_sent"]) // 86_400_000 == ms // 86_400_000]
    assert sids == expected and expected
