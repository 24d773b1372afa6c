"""Single legacy messages (fetch, redact, cancel, delete, create) and authentication on both APIs."""

from __future__ import annotations

import aiohttp
import pytest

from sync.emulator import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_API_KEY_SECRET,
    DEFAULT_API_KEY_SID,
    DEFAULT_AUTH_TOKEN,
    Account,
    Emulator,
    serve,
)
from sync.emulator.formats import parse_rfc2822

from .helpers import LEGACY_LIST, NOW, basic_auth, get_json, legacy_message, legacy_scan


async def test_fetch_returns_the_record_the_list_shows(http, emu: Emulator):
    """GET .../Messages/{Sid}.json serves the same JSON as the list item."""
    listed = emu.legacy_payloads()[3]
    status, body = await get_json(http, legacy_message(listed["sid"]))
    assert status == 200 and body == listed


async def test_fetching_an_unknown_sid_is_404_with_twilios_body(http):
    """The 404 body names the requested path, exactly as Twilio words it."""
    path = legacy_message("SM" + "0" * 32)
    status, body = await get_json(http, path)
    assert status == 404
    assert body == {
        "code": 20404,
        "message": f"The requested resource {path} was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


async def test_posting_an_empty_body_redacts_it_and_bumps_date_updated(http, emu: Emulator):
    """POST Body="" empties the body, keeps everything else, and moves date_updated forward."""
    before = next(m for m in emu.legacy_payloads() if m["body"] and m["date_sent"])
    async with http.post(legacy_message(before["sid"]), data={"Body": ""}) as response:
        assert response.status == 200
        after = await response.json()
    assert after["body"] == ""
    assert parse_rfc2822(after["date_updated"]) > parse_rfc2822(before["date_updated"])
    assert {k: v for k, v in after.items() if k not in ("body", "date_updated")} == {
        k: v for k, v in before.items() if k not in ("body", "date_updated")
    }
    listed = next(m for m in await legacy_scan(http, {"PageSize": "1000"}) if m["sid"] == before["sid"])
    assert listed == after


async def test_a_non_empty_body_cannot_be_posted(http, emu: Emulator):
    """Only redaction is allowed: any other Body is a 400."""
    sid = emu.legacy_payloads()[0]["sid"]
    async with http.post(legacy_message(sid), data={"Body": "new text"}) as response:
        assert response.status == 400


async def test_status_canceled_cancels_only_scheduled_messages(http, emu: Emulator):
    """POST Status=canceled cancels a scheduled message; on any other it is a 400."""
    scheduled = next(m for m in emu.legacy_payloads() if m["status"] == "scheduled")
    async with http.post(legacy_message(scheduled["sid"]), data={"Status": "canceled"}) as response:
        assert response.status == 200
        assert (await response.json())["status"] == "canceled"
    delivered = next(m for m in emu.legacy_payloads() if m["status"] == "delivered")
    async with http.post(legacy_message(delivered["sid"]), data={"Status": "canceled"}) as response:
        assert response.status == 400


async def test_delete_is_204_and_the_record_vanishes(http, emu: Emulator):
    """DELETE answers 204 with no body; the message then 404s and is gone from the list."""
    sid = emu.legacy_payloads()[10]["sid"]
    async with http.delete(legacy_message(sid)) as response:
        assert response.status == 204
        assert await response.read() == b""
    status, _ = await get_json(http, legacy_message(sid))
    assert status == 404
    assert sid not in {m["sid"] for m in await legacy_scan(http, {"PageSize": "1000"})}
    async with http.delete(legacy_message(sid)) as response:
        assert response.status == 404


async def test_create_answers_201_with_a_queued_message_that_lists(http, emu: Emulator):
    """POST Messages.json creates a queued message (accepted via a Messaging Service) with no date_sent."""
    async with http.post(LEGACY_LIST, data={"To": "+15558675310", "From": "+15017122661", "Body": "Hi 👋"}) as response:
        assert response.status == 201
        created = await response.json()
    assert (created["status"], created["date_sent"], created["price"], created["body"]) == ("queued", None, None, "Hi 👋")
    assert created["sid"].startswith("SM") and created["direction"] == "outbound-api"
    assert created["messaging_service_sid"] is None and created["num_segments"] == "1"
    assert created["uri"] == legacy_message(created["sid"])
    assert created in emu.legacy_payloads()

    service = "MG" + "1" * 32
    async with http.post(LEGACY_LIST, data={"To": "+15558675310", "MessagingServiceSid": service, "Body": "x"}) as response:
        assert response.status == 201
        via = await response.json()
    assert (via["status"], via["from"], via["messaging_service_sid"], via["num_segments"]) == ("accepted", None, service, "0")


@pytest.mark.parametrize(
    ("form", "code"),
    [({"From": "+15017122661", "Body": "x"}, 21604), ({"To": "+15558675310", "Body": "x"}, 21603),
     ({"To": "+15558675310", "From": "+15017122661"}, 21602)],
)  # fmt: skip
async def test_create_without_required_fields_is_400(http, form, code):
    """To, a sender, and a Body are required to send."""
    async with http.post(LEGACY_LIST, data=form) as response:
        assert response.status == 400
        assert (await response.json())["code"] == code


@pytest.mark.parametrize("path", [LEGACY_LIST, "/v1/Messages", "/v1/Messages/Operations"])
async def test_a_wrong_token_is_401_in_each_apis_error_shape(base_url, path):
    """Bad or missing credentials are 401 code 20003, legacy- or TwilioErrors-shaped by API."""
    for headers in (basic_auth(DEFAULT_ACCOUNT_SID, "wrong"), {}):
        async with aiohttp.ClientSession(base_url, headers=headers) as session, session.get(path) as response:
            assert response.status == 401
            body = await response.json()
        if path.startswith("/v1"):
            assert body == {
                "errors": [
                    {
                        "code": 20003,
                        "message": "Authenticate",
                        "info_url": "https://www.twilio.com/docs/api/errors/20003",
                        "context": None,
                    }
                ]
            }
        else:
            assert body == {
                "code": 20003,
                "message": "Authenticate",
                "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401,
            }


async def test_an_api_key_and_secret_act_for_their_account(base_url):
    """Basic auth with an API key SID and secret works on both APIs."""
    async with aiohttp.ClientSession(base_url, headers=basic_auth(DEFAULT_API_KEY_SID, DEFAULT_API_KEY_SECRET)) as session:
        status, page = await get_json(session, LEGACY_LIST)
        assert status == 200 and len(page["messages"]) == 50
        status, page = await get_json(session, "/v1/Messages")
        assert status == 200 and len(page["messages"]) == 50
    async with aiohttp.ClientSession(base_url, headers=basic_auth(DEFAULT_API_KEY_SID, DEFAULT_AUTH_TOKEN)) as session:
        status, _ = await get_json(session, LEGACY_LIST)
        assert status == 401


async def test_accounts_are_separate_and_another_accounts_path_is_404():
    """Each account sees its own data; naming another account in the path is a 404."""
    a = Account("AC" + "a" * 32, "token-a", {"SK" + "a" * 32: "secret-a"})
    b = Account("AC" + "b" * 32, "token-b")
    emu = Emulator(seed=1, comms_messages=60, legacy_messages=80, now=NOW, accounts=[a, b])
    assert len(emu.legacy_payloads(a.sid)) == len(emu.legacy_payloads(b.sid)) == 80
    assert not {m["sid"] for m in emu.legacy_payloads(a.sid)} & {m["sid"] for m in emu.legacy_payloads(b.sid)}
    async with serve(emu) as url, aiohttp.ClientSession(url, headers=basic_auth(a.sid, a.auth_token)) as session:
        status, page = await get_json(session, f"/2010-04-01/Accounts/{a.sid}/Messages.json", {"PageSize": "100"})
        assert status == 200
        assert [m["sid"] for m in page["messages"]] == [m["sid"] for m in emu.legacy_payloads(a.sid)]
        other = f"/2010-04-01/Accounts/{b.sid}/Messages.json"
        status, body = await get_json(session, other)
        assert status == 404 and body["code"] == 20404 and other in body["message"]
        b_sid = emu.legacy_payloads(b.sid)[0]["sid"]
        status, _ = await get_json(session, legacy_message(b_sid, a.sid))
        assert status == 404
        status, page = await get_json(session, "/v1/Messages", {"pageSize": "1000"})
        assert [m["id"] for m in page["messages"]] == [m["id"] for m in emu.comms_payloads(a.sid)]


async def test_unknown_paths_and_methods_get_json_errors(http):
    """The router's own 404 and 405 come back as Twilio-shaped JSON."""
    status, body = await get_json(http, "/2010-04-01/Accounts/Nope.json")
    assert status == 404 and body["code"] == 20404
    async with http.put(LEGACY_LIST) as response:
        assert response.status == 405
        assert (await response.json())["status"] == 405
