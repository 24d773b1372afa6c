"""The generated data set (awkward records, determinism, scale) and the Python hooks that change it."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from sync.emulator import Emulator
from sync.emulator.formats import parse_rfc2822, parse_rfc3339

from .helpers import LEGACY_LIST, NOW, get_json, legacy_message

NON_BMP = re.compile("[\U00010000-\U0010ffff]")
ZWJ = "\u200d"
SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff]")


@pytest.fixture(scope="module")
def default_sized() -> Emulator:
    """The size most callers use: 500 records per API."""
    return Emulator(seed=0, now=NOW)


def test_legacy_data_holds_every_awkward_kind(default_sized: Emulator):
    """Even 500 legacy records include each kind of record that trips archivers."""
    records = default_sized.legacy_payloads()
    assert len(records) == 500

    def some(predicate) -> bool:
        return any(predicate(m) for m in records)

    assert some(lambda m: NON_BMP.search(m["body"] or ""))
    assert some(lambda m: SKIN_TONES.search(m["body"] or ""))
    assert some(lambda m: ZWJ in (m["body"] or ""))
    assert some(lambda m: m["body"] == "")
    assert some(lambda m: len(m["body"] or "") == 1600 and int(m["num_segments"]) > 1)
    for status in ("queued", "accepted", "scheduled"):
        assert some(lambda m, status=status: m["status"] == status and m["date_sent"] is None)
    assert some(lambda m: m["status"] == "failed" and m["date_sent"] is None)
    assert some(lambda m: m["price"] is None and m["price_unit"] == "USD" and m["date_sent"] is not None)
    assert some(lambda m: m["status"] == "failed" and isinstance(m["error_code"], int) and m["error_message"])
    assert some(lambda m: m["status"] == "undelivered" and isinstance(m["error_code"], int) and m["error_message"])
    assert some(lambda m: (m["to"] or "").startswith("whatsapp:") and (m["from"] or "").startswith("whatsapp:"))
    assert some(lambda m: m["sid"].startswith("MM") and int(m["num_media"]) > 0)
    assert some(lambda m: m["direction"] == "inbound" and m["status"] == "received")
    assert some(lambda m: len(m["tags"]) == 10)
    assert some(lambda m: m["messaging_service_sid"] is None) and some(lambda m: m["from"] is None)
    assert {m["direction"] for m in records} == {"inbound", "outbound-api", "outbound-call", "outbound-reply"}
    # Spread over the last 30 days, so a 7-day window sees only part of the history.
    oldest = min(parse_rfc2822(m["date_created"]) for m in records)
    assert NOW - dt.timedelta(days=30) <= dt.datetime.fromtimestamp(oldest / 1000, dt.UTC) < NOW - dt.timedelta(days=25)


def test_comms_data_holds_every_awkward_kind(default_sized: Emulator):
    """Even 500 v1 messages include groups, WhatsApp, RCS, inbound, scheduled, deleted and 10-tag ones."""
    messages = default_sized.comms_payloads()
    assert len(messages) == 500

    def some(predicate) -> bool:
        return any(predicate(m) for m in messages)

    assert some(lambda m: m["status"] == "GROUP" and len(m["to"]) > 1)
    assert some(lambda m: m["from"]["channel"] == "WHATSAPP")
    assert some(lambda m: m["from"]["channel"] == "RCS")
    assert some(lambda m: m["status"] == "INBOUND" and m["related"] == [])
    assert some(lambda m: m["status"] == "SCHEDULED" and parse_rfc3339(m["scheduledFor"]) > NOW.timestamp() * 1000)
    assert some(lambda m: m["deletedAt"] is not None)
    assert some(lambda m: len(m["tags"]) == 10)
    assert some(lambda m: "senderPoolId" in m["from"])
    assert some(lambda m: "." in m["createdAt"]) and some(lambda m: "." not in m["createdAt"])
    ids = re.compile(r"^comms_message_[0-7][a-hjkmnpqrstv-z0-9]{25,34}$")
    assert all(ids.match(m["id"]) for m in messages)
    operations = default_sized.operation_payloads()
    assert {o["status"] for o in operations} >= {"COMPLETED", "SCHEDULED", "CANCELED", "PROCESSING"}
    assert some(lambda m: m["status"] == "QUEUED")
    assert any(o["stats"]["total"] > 1 for o in operations)
    week = NOW - dt.timedelta(days=7)
    assert all(dt.datetime.fromisoformat(m["createdAt"]) > week for m in messages)


def test_the_same_seed_and_now_give_the_same_records():
    """Generation is deterministic: same seed and now, same bytes; another seed, other records."""
    a, b = Emulator(seed=3, comms_messages=200, legacy_messages=200, now=NOW), Emulator(seed=3, comms_messages=200, legacy_messages=200, now=NOW)
    assert a.legacy_payloads() == b.legacy_payloads()
    assert a.comms_payloads() == b.comms_payloads()
    assert a.operation_payloads() == b.operation_payloads()
    c = Emulator(seed=4, comms_messages=200, legacy_messages=200, now=NOW)
    assert {m["sid"] for m in c.legacy_payloads()}.isdisjoint({m["sid"] for m in a.legacy_payloads()})


def test_generating_200k_messages_per_api():
    """200,000 legacy and 200,000 v1 messages generate in one go (time printed, not asserted)."""
    started = time.perf_counter()
    emu = Emulator(seed=0, comms_messages=200_000, legacy_messages=200_000, now=NOW)
    elapsed = time.perf_counter() - started
    print(f"generated 200k legacy + 200k v1 messages in {elapsed:.2f}s")
    book = next(iter(emu._books.values()))
    assert len(book.legacy_keys) >= 200_000 and len(book.comms_keys) >= 200_000
    page, _, _, more = emu.legacy_page(book.account.sid, to=None, from_=None, sent_range=None, token=None, size=1000)
    assert len(page) == 1000 and more


async def test_python_updates_bump_date_updated_and_show_over_http(http, emu: Emulator):
    """update_legacy_message changes what the API serves and moves date_updated forward unless given."""
    target = emu.legacy_payloads()[5]
    after = emu.update_legacy_message(target["sid"], status="delivered", error_code=None)
    assert parse_rfc2822(after["date_updated"]) > parse_rfc2822(target["date_updated"])
    _, fetched = await get_json(http, legacy_message(target["sid"]))
    assert fetched == after
    pinned = emu.update_legacy_message(target["sid"], date_updated="Mon, 16 Aug 2010 03:45:03 +0000")
    assert pinned["date_updated"] == "Mon, 16 Aug 2010 03:45:03 +0000"
    pinned["body"] = "mutating the returned dict changes nothing"
    assert emu.legacy_payloads()[5]["body"] != pinned["body"]


async def test_injected_bad_legacy_values_are_served_verbatim(http, emu: Emulator):
    """A NUL in the body, a malformed date, an unknown status and an extra field reach the client as given."""
    bad = emu.add_legacy_message(body="x\x00y", date_sent="24/05/2019", status="exploded", surprise={"nested": [1]})
    _, page = await get_json(http, LEGACY_LIST, {"PageSize": "1000"})
    served = next(m for m in page["messages"] if m["sid"] == bad["sid"])
    assert served == bad
    assert (served["body"], served["date_sent"], served["status"], served["surprise"]) == ("x\x00y", "24/05/2019", "exploded", {"nested": [1]})
    # An unparseable date_sent sorts with the nulls (first) and never matches a DateSent filter.
    assert page["messages"].index(served) < sum(1 for m in page["messages"] if m["date_sent"] is None) + 1
    date = dt.date(2019, 5, 24).isoformat()
    _, filtered = await get_json(http, LEGACY_LIST, {"DateSent": date})
    assert bad["sid"] not in {m["sid"] for m in filtered["messages"]}


def test_unknown_ids_raise_key_error(emu: Emulator):
    """The Python hooks refuse ids they do not know, rather than inventing records."""
    with pytest.raises(KeyError):
        emu.update_legacy_message("SM" + "0" * 32, body="")
    with pytest.raises(KeyError):
        emu.delete_legacy_message("SM" + "0" * 32)
    with pytest.raises(KeyError):
        emu.update_comms_message("comms_message_01h2xcejqtf2nbrexx3vqjhp41", status="READ")
    with pytest.raises(KeyError):
        emu.update_operation("comms_operation_01h2xcejqtf2nbrexx3vqjhp41", status="CANCELED")


def test_an_added_comms_message_gets_its_own_operation(emu: Emulator):
    """add_comms_message creates a one-message Operation whose stats count it; INBOUND ones get none."""
    added = emu.add_comms_message(status="FAILED")
    (related,) = added["related"]
    op = next(o for o in emu.operation_payloads() if o["id"] == related["id"])
    assert (op["stats"]["total"], op["stats"]["failed"], op["status"]) == (1, 1, "COMPLETED")
    count = len(emu.operation_payloads())
    inbound = emu.add_comms_message(status="INBOUND")
    assert inbound["related"] == [] and len(emu.operation_payloads()) == count
    joined = emu.add_comms_message(related=added["related"], status="QUEUED")
    op = next(o for o in emu.operation_payloads() if o["id"] == related["id"])
    assert (op["stats"]["total"], op["stats"]["queued"], op["status"]) == (2, 1, "PROCESSING")
    assert joined["related"] == added["related"]
    changed = emu.update_operation(related["id"], status="CANCELED")
    assert changed["status"] == "CANCELED"
