"""Pages to rows, on Twilio's own response bodies: windows, duplicates, unusable records."""

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from sync import errors, sources
from sync.models import Counts, Window
from sync.progress import Progress

FIXTURES = Path(__file__).resolve().parents[1] / "reference" / "fixtures"
LEGACY = sources.BY_STREAM["legacy_messages"]
COMMS = sources.BY_STREAM["comms_messages"]
ACCOUNT = "AC" + "a" * 32
MAY_2019 = Window(datetime(2019, 5, 1, tzinfo=timezone.utc), datetime(2019, 6, 1, tzinfo=timezone.utc))
V1_MESSAGE = {
    "createdAt": "2023-08-24T14:15:22Z", "updatedAt": "2023-08-24T14:15:22Z", "deletedAt": None,
    "from": {"address": "+12065558844", "channel": "SMS", "senderId": "comms_sender_01h9krwprkeee8fzqspvwy6nq8"},
    "id": "comms_message_01h2xcejqtf2nbrexx3vqjhp41",
    "related": [{"name": "OPERATION", "id": "comms_operation_01h2xcejqtf2nbrexx3vqjhp41",
                 "uri": "https://comms.twilio.com/v1/Messages/Operations/comms_operation_01h2xcejqtf2nbrexx3vqjhp41"}],
    "scheduledFor": None, "status": "SENT", "tags": {},
    "to": [{"address": "+14153901002", "channel": "PHONE"}, {"address": "+14153901003", "channel": "PHONE"}],
}


def legacy_page() -> dict:
    return json.loads((FIXTURES / "legacy_read_full_page1.json").read_text())


def one_record(record: dict) -> dict:
    return {"messages": [record], "next_page_uri": None}


def rows(source, page) -> list[tuple]:
    """The table rows of a page's records, as the store makes those it writes."""
    return sources.rows(source, ACCOUNT, page.records)


def test_a_legacy_page_becomes_rows_keyed_by_sid():
    """Twilio's own page-1 body yields one row per message, the last position, and no next page."""
    page = sources.parse_page(LEGACY, legacy_page(), ACCOUNT, MAY_2019, "/first")
    assert [row[0] for row in rows(LEGACY, page)] == ["SMded05904ccb347238880ca9264e8fe1c", "MMc26223853f8c46b4ab7dfaa6abba0a26"]
    problems = sum(1 for row in rows(LEGACY, page) if row[-2] is not None)
    assert (page.seen, page.outside_window, problems, len(page.rejected), page.next_url) == (2, 0, 0, 0, None)
    assert page.reached == datetime(2019, 5, 24, 17, 44, 46, tzinfo=timezone.utc)


def test_records_created_outside_the_window_are_counted_not_kept():
    """A window that excludes the fixture's messages keeps none of them, and says so."""
    june = Window(datetime(2019, 6, 1, tzinfo=timezone.utc), datetime(2019, 7, 1, tzinfo=timezone.utc))
    page = sources.parse_page(LEGACY, legacy_page(), ACCOUNT, june, "/first")
    assert page.records == [] and page.outside_window == 2


def test_a_record_listed_twice_on_one_page_is_upserted_once_with_its_last_copy():
    """Postgres cannot upsert a row twice in one statement: duplicates on a page collapse to the last."""
    body = legacy_page()
    again = copy.deepcopy(body["messages"][0])
    again["status"] = "delivered"
    body["messages"].append(again)
    page = sources.parse_page(LEGACY, body, ACCOUNT, MAY_2019, "/first")
    statuses = {row[0]: row[7] for row in rows(LEGACY, page)}
    assert len(page.records) == 2 and statuses["SMded05904ccb347238880ca9264e8fe1c"] == "delivered"


@pytest.mark.parametrize("record", [{"body": "no sid"}, {"sid": None}, {"sid": 42}, "SMnotanobject", None])
def test_records_without_a_usable_key_are_kept_aside_whole(record):
    """A record with no string sid cannot be keyed: it is kept aside as JSON with a reason, the rest go on."""
    body = legacy_page()
    body["messages"].insert(1, record)
    page = sources.parse_page(LEGACY, body, ACCOUNT, MAY_2019, "/first")
    assert len(page.records) == 2 and len(page.rejected) == 1
    kept = page.rejected[0]
    assert json.loads(kept.raw_text) == record and kept.key is None and kept.reason


# Digests as release 5e6f83a computed them: archives hold these, and a rescan after an upgrade
# must find them equal to write nothing.
STORED_DIGESTS = {
    "as served": ({}, "f307fa29f2341bc8b3462a831e35eba0"),
    "a NUL": ({"body": "a\x00b"}, "fa82fde2c2cf7614fdea8529d310360d"),
    "a lone surrogate": ({"body": "half \ud83d!"}, "9798c12d46fce8d5b9b60789a640d504"),
    "a quoted \\u0000": ({"body": "the six characters \\u0000"}, "c4e073a9fe7d3c865b22dade78b34dc5"),
}


@pytest.mark.parametrize("change", sorted(STORED_DIGESTS))
def test_a_records_digest_is_the_one_archives_already_hold(change):
    """The digest is md5 over the same bytes as before (raw, then the exact JSON where raw was cleaned)."""
    fields, digest = STORED_DIGESTS[change]
    page = sources.parse_page(LEGACY, one_record({**legacy_page()["messages"][0], **fields}), ACCOUNT, MAY_2019, "/")
    assert page.records[0].digest.hex() == digest and rows(LEGACY, page)[0][-1].hex() == digest


def test_a_records_conversions_wait_for_its_row():
    """A page keeps what the digest compare and the plan need; a bad price and date are found when
    the row is made, which the store does only for a record new to the table or changed."""
    record = {**legacy_page()["messages"][0], "price": "abc", "date_sent": "yesterday"}
    page = sources.parse_page(LEGACY, one_record(record), ACCOUNT, MAY_2019, "/")
    [kept] = page.records
    assert kept.problems is None and kept.sent is None and page.times[0][1] is None
    assert kept.created == datetime(2019, 5, 24, 17, 44, 46, tzinfo=timezone.utc).timestamp()
    assert [p.split(":")[0] for p in rows(LEGACY, page)[0][-2]] == ["price", "date_sent"]


@pytest.mark.parametrize("body", [[], {"messages": None, "next_page_uri": None}, {"next_page_uri": None}, "oops"])
def test_a_malformed_envelope_is_a_retryable_error(body):
    """An envelope without its list is a malformed page (retried), never an empty success."""
    with pytest.raises(errors.RetryableSourceError):
        sources.parse_page(LEGACY, body, ACCOUNT, MAY_2019, "/first")


def test_a_v1_message_breaks_out_sender_first_recipient_and_operation():
    """From the documented v1 example: sender, first of several recipients, count, operation, times."""
    body = {"messages": [V1_MESSAGE], "pagination": {"next": "tok", "self": "s"}}
    window = Window(datetime(2023, 8, 1, tzinfo=timezone.utc), datetime(2023, 9, 1, tzinfo=timezone.utc))
    page = sources.parse_page(COMMS, body, ACCOUNT, window, "/v1/Messages?pageSize=50")
    row = dict(zip([name for name, _ in COMMS.all_columns], rows(COMMS, page)[0]))
    assert row["account_sid"] == ACCOUNT  # v1 payloads carry none: the synced account is recorded
    assert (row["from_address"], row["from_channel"]) == ("+12065558844", "SMS")
    assert (row["to_address"], row["recipient_count"]) == ("+14153901002", 2)
    assert row["operation_id"] == "comms_operation_01h2xcejqtf2nbrexx3vqjhp41"
    assert row["created_at"] == datetime(2023, 8, 24, 14, 15, 22, tzinfo=timezone.utc)
    assert row["parse_problems"] is None
    assert page.next_url == "/v1/Messages?pageSize=50&pageToken=tok"


def test_progress_says_how_far_back_each_stream_has_reached():
    """The live line shows records, pages and how far back in time each stream has got."""
    progress = Progress()
    legacy = progress.stream("legacy_messages")
    legacy.counts = Counts(pages=3, seen=3000)
    legacy.reached = datetime(2026, 11, 20, 14, 5, tzinfo=timezone.utc)
    progress.stream("comms_messages").done = True
    line = progress.line()
    assert "legacy_messages: 3,000 records, 3 pages" in line and "back to 2026-11-20 14:05" in line
    assert "comms_messages: 0 records, 0 pages" in line and "done" in line


@pytest.mark.parametrize(
    ("running", "requested", "fixed_end", "resume"),
    [
        # no flags: the default window moved on with the clock; the interrupted pass covers it
        ((0, 100), (5, 105), False, True),
        # --since only: same start, a later "now" as end
        ((0, 100), (0, 130), False, True),
        # --since reaching further back than the interrupted pass: it cannot serve
        ((10, 100), (0, 130), False, False),
        # --until given: only a pass ending exactly there serves
        ((0, 100), (0, 100), True, True),
        ((0, 100), (0, 90), True, False),
    ],
)
def test_an_interrupted_scan_is_resumed_only_when_it_serves_the_request(running, requested, fixed_end, resume):
    """Rerunning the same backfill resumes it even though "now" moved; a different window starts anew."""
    from datetime import timedelta

    from sync import worker

    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)

    def window(bounds):
        return Window(t0 + timedelta(hours=bounds[0]), t0 + timedelta(hours=bounds[1]))

    assert worker.resumable(window(running), window(requested), fixed_end=fixed_end) is resume


DAMAGED = [{}, {"status": "TELEPORTED", "num_media": {"n": 1}, "price": "abc", "date_sent": "yesterday"},
           {"from": "not an object", "to": "nobody", "stats": [1], "createdAt": 5, "tags": {"a": [1]}},
           {"from": {"address": 7}, "to": [{"channel": None}, 3], "related": [{"name": "OPERATION", "id": 9}],
            "stats": {"total": "3", "sent": "x"}, "account_sid": None}]


@pytest.mark.parametrize("stream", sorted(sources.BY_STREAM))
@pytest.mark.parametrize("damage", DAMAGED)
def test_the_written_out_reader_reads_what_each_columns_own_reader_reads(stream, damage):
    """Source.typed (generated for speed) equals each declared column's `read`, values and problems alike."""
    source = sources.BY_STREAM[stream]
    base = legacy_page()["messages"][0] if stream == "legacy_messages" else V1_MESSAGE
    record = {**base, **damage, source.key: "k1"}
    fast: list[str] = []
    slow: list[str] = []
    parts = source.parts(record, ACCOUNT, slow)
    expected = tuple(c.read(parts if c.part == "*" else parts[c.part], slow) for c in source.columns)
    assert source.typed(record, ACCOUNT, fast) == expected and fast == slow


AWKWARD = [{"body": 42}, {"price": -0.0075, "error_code": 30003, "num_segments": 2}, {"tags": {"a": [1, {"b": None}]}},
           {"from": None, "to": ["+1"], "unknown": {"x": 1}}, {"account_sid": 7}, {"body": "\\u0000 é👍"},
           {"error_code": "99999999999", "date_created": "Sun, 08 Nov 2026 01:11:41 -0500"}]


@pytest.mark.parametrize("stream", sorted(sources.BY_STREAM))
@pytest.mark.parametrize("damage", DAMAGED + AWKWARD)
def test_a_records_json_is_typed_as_its_decoded_record_is(stream, damage):
    """Source.typed_json (legacy: decoded straight into a struct of the fields its columns read)
    gives what Source.typed gives for the decoded dict, values and problems alike, whatever the
    fields hold: a value that does not fit the struct goes the dict's way."""
    source = sources.BY_STREAM[stream]
    base = legacy_page()["messages"][0] if stream == "legacy_messages" else V1_MESSAGE
    record = {**base, **damage, source.key: "k1"}
    raw = orjson.dumps(record).decode()
    from_json: list[str] = []
    from_dict: list[str] = []
    assert source.typed_json(raw, ACCOUNT, from_json) == source.typed(orjson.loads(raw), ACCOUNT, from_dict)
    assert from_json == from_dict


def test_every_record_of_a_legacy_page_is_typed_from_its_json_as_from_its_dict():
    source = sources.BY_STREAM["legacy_messages"]
    for record in legacy_page()["messages"]:
        from_json: list[str] = []
        from_dict: list[str] = []
        assert source.typed_json(orjson.dumps(record).decode(), ACCOUNT, from_json) == source.typed(record, ACCOUNT, from_dict)
        assert from_json == from_dict


# ---- the media list of a legacy message (sync/sources/media.py) ---------------------------------

MEDIA_ITEM = {
    "account_sid": "AC" + "a" * 32, "content_type": "image/jpeg", "date_created": "Sun, 16 Aug 2015 15:53:54 +0000",
    "date_updated": "Sun, 16 Aug 2015 15:53:55 +0000", "parent_sid": "MM" + "b" * 32, "sid": "ME" + "c" * 32,
    "uri": "/2010-04-01/Accounts/AC.../Messages/MM.../Media/ME....json",
}


@pytest.mark.parametrize(("item", "problem"), [
    (MEDIA_ITEM, None),
    ({**MEDIA_ITEM, "date_created": "yesterday"}, "date_created: "),
    ({**MEDIA_ITEM, "content_type": 7}, "content_type: "),
    ({**MEDIA_ITEM, "parent_sid": "MM" + "d" * 32}, "parent_sid: "),
    ({**MEDIA_ITEM, "uri": "a\x00b"}, "nul_replaced"),
])
def test_a_media_item_becomes_a_row_its_problems_listed(item, problem):
    """Every field that types goes to its column; one that does not is null, listed, and kept in raw."""
    from sync.sources import media

    row = media.to_row(item, "AC" + "a" * 32, "MM" + "b" * 32)
    assert len(row) == len(media.COLUMNS) and row[0] == item["sid"] and row[2] == "MM" + "b" * 32
    problems = row[-1]
    assert (problems is None) if problem is None else problems[0].startswith(problem)
    assert json.loads(row[media.COLUMNS.index("raw")])["sid"] == item["sid"]


@pytest.mark.parametrize("item", [["not", "an", "object"], {"content_type": "image/png"}, {**MEDIA_ITEM, "sid": ""}])
def test_a_media_item_without_a_usable_sid_is_rejected_whole(item):
    from sync.models import Rejected
    from sync.sources import media

    made = media.to_row(item, "AC" + "a" * 32, "MM" + "b" * 32)
    assert isinstance(made, Rejected) and json.loads(made.raw_text) == item


def test_a_media_page_without_its_list_is_malformed():
    """Retried as any malformed page is (http.py), never read as an empty list."""
    from sync.sources import media

    with pytest.raises(errors.RetryableSourceError):
        media.parse_page({"messages": []}, "AC" + "a" * 32, "MM" + "b" * 32)
    page = media.parse_page({"media_list": [MEDIA_ITEM, 3], "next_page_uri": None}, "AC" + "a" * 32, "MM" + "b" * 32)
    assert len(page.rows) == 1 and len(page.rejected) == 1 and page.next_url is None
