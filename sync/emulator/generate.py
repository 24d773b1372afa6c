"""Deterministic synthetic message history for both APIs, fast enough for 200k+200k records.

Everything comes from one `random.Random` per account and API, seeded from the emulator's
seed, and every timestamp is relative to the emulator's `now`: the same seed and `now` give
the same records byte for byte. The data carries the awkward records real accounts have
(non-BMP text, ZWJ emoji, empty bodies, null date_sent and price, error codes, WhatsApp,
MMS, 1,600-character bodies, inbound, group messages, scheduled and deleted v1 messages,
10-tag records) so clients meet them in tests rather than in production; any data set of
SHOWCASE_MIN records or more holds at least one of each kind.

Records come out as JSON text assembled from pre-encoded fragments (building a dict and
encoding it costs twice as much, and generation is what a 400k-record benchmark waits
for); legacy records draw most fields from a per-status pool of pre-encoded variants. Legacy records keep the key order of Twilio's fixtures (alphabetical); v1 ones
that of the documented examples. A v1 Operation sends one body from one sender with one set
of tags to all its recipients, as bulk sends do.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator
from itertools import accumulate
from typing import Any, NamedTuple

import orjson

from .formats import DAY_MS, rfc2822, rfc3339

HOUR_MS = 3_600_000
SHOWCASE_MIN = 50  # data sets at least this large hold one record of every awkward kind
LEGACY_RETENTION_MS = 400 * DAY_MS
COMMS_RETENTION_MS = 7 * DAY_MS
COMMS_BASE = "https://comms.twilio.com/v1"
MMS_SHARE = 0.07  # legacy messages with media, by default
MAX_MEDIA = 10  # media items of one message at most, as Twilio allows


def _js(value: object) -> str:
    """JSON text of a value, for fragments that may need escaping."""
    return orjson.dumps(value).decode()


class Picker:
    """Weighted choice through a 1,000-slot table (weights in permille): ~6x faster than random.choices."""

    def __init__(self, weighted: dict[Any, float]):
        self.values = list(weighted)
        cum = list(accumulate(weighted.values()))
        self.table = [self.values[bisect(cum, (i + 0.5) * cum[-1] / 1000)] for i in range(1000)]

    def __call__(self, rng: random.Random) -> Any:
        return self.table[int(rng.random() * 1000)]


# ---------------------------------------------------------------- ids

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # every 10-bit value as 2 chars


def ulid(ms: int, rng: random.Random) -> str:
    """26 lowercase Crockford base32 chars: 48-bit ms time then 80 random bits (first char 0-7).

    Ten bits at a time through a 1,024-entry table: four times faster than base64.b32encode.
    """
    r = rng.getrandbits(80)
    p = _PAIRS
    return (
        p[ms >> 40 & 1023] + p[ms >> 30 & 1023] + p[ms >> 20 & 1023] + p[ms >> 10 & 1023] + p[ms & 1023]
        + p[r >> 70] + p[r >> 60 & 1023] + p[r >> 50 & 1023] + p[r >> 40 & 1023]
        + p[r >> 30 & 1023] + p[r >> 20 & 1023] + p[r >> 10 & 1023] + p[r & 1023]
    )  # fmt: skip


def message_sid(rng: random.Random, mms: bool = False) -> str:
    """`SM` (or `MM` for media messages) + 32 hex."""
    return ("MM%032x" if mms else "SM%032x") % rng.getrandbits(128)


def hex_sid(prefix: str, rng: random.Random) -> str:
    return f"{prefix}{rng.getrandbits(128):032x}"


# ---------------------------------------------------------------- bodies

_GSM = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXT = set("^{}\\[~]|€\f")


def segments(body: str) -> int:
    """SMS segments: GSM-7 (160, or 153 per part) unless any char needs UCS-2 (70 / 67 UTF-16 units)."""
    if not body:
        return 1
    if all(c in _GSM or c in _GSM_EXT for c in body):
        n = len(body) + sum(c in _GSM_EXT for c in body)
        return 1 if n <= 160 else -(-n // 153)
    n = len(body.encode("utf-16-le")) // 2
    return 1 if n <= 70 else -(-n // 67)


_LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco. "
)
_AWKWARD_BODIES = [
    "Hello! 👍",
    "👍🏽 sounds good, see you there 👋🏿",
    "𝕏 marks the spot: 𝒜𝓁𝓅𝒽𝒶 𝔹𝕖𝕥𝕒",
    "Family night 👨‍👩‍👧‍👦 at 7, bring 🧑🏽‍🍳",
    "🏳️‍🌈 Pride sale ends today",
    "Flags: 🇺🇸🇬🇧🇯🇵🇧🇷",
    "こんにちは、ご予約ありがとうございます。",
    "مرحبا! تم تأكيد طلبك رقم ١٢٣",
    "Café crème, naïve façade, Cafe\u0301 (combining accent)",
    "Quotes \"double\" and 'single', back\\slash, <b>tags</b> & ampersands",
    "Line one\nLine two\r\nLine three\tafter a tab",
    "Zero\u200bwidth space, \u2028line separator, \ufeffBOM and \u202eright-to-left override",
    "Price: €5 ^_^ {braces} [brackets] ~tilde | pipe",
    "A" * 160,
    "B" * 161,
    (_LOREM * 9)[:1600],
    (_LOREM * 3)[:459],
    ("Emoji storm 🎉🔥💯 " * 40)[:700],
    "STOP",
    "Yes",
    "ok",
    "  leading and trailing spaces  ",
]
_PLAIN_BODIES = [
    "Hi! Your appointment is confirmed for tomorrow at 3pm. Reply C to cancel.",
    "Thanks, see you soon",
    "Your package is out for delivery today.",
    "Reminder: your bill of $42.17 is due on Friday.",
    "Can you call me back?",
    "Running 10 minutes late, sorry!",
    "Your table for 4 is ready. Please come to the host stand.",
    "Reply YES to confirm your subscription.",
]
# (text, num_segments, JSON text): mostly plain, about a quarter awkward.
BODIES = [(b, str(segments(b)), _js(b)) for b in _PLAIN_BODIES * 8 + _AWKWARD_BODIES]


def pick_body(rng: random.Random) -> tuple[str, str, str]:
    """A body, its segment count and its JSON; some are one-time codes so bodies vary."""
    r = rng.random()
    if r < 0.15:
        text = f"Your verification code is {int(rng.random() * 1_000_000):06d}"
        return text, "1", f'"{text}"'
    if r < 0.25:
        text = f"Order #{10_000 + int(rng.random() * 90_000)} has shipped 📦"
        return text, "1", f'"{text}"'
    return BODIES[int(rng.random() * len(BODIES))]


# ---------------------------------------------------------------- addresses


def _numbers(rng: random.Random, n: int) -> list[str]:
    """Customer numbers: mostly NANP, some UK and German mobiles."""
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.85:
            out.append(f"+1{rng.randrange(201, 990)}{rng.randrange(200, 999)}{rng.randrange(10_000):04d}")
        elif r < 0.93:
            out.append(f"+447700{rng.randrange(900_000, 999_999)}")
        else:
            out.append(f"+4915{rng.randrange(10_000_000, 99_999_999)}")
    return out


# ---------------------------------------------------------------- legacy 2010-04-01

LEGACY_ERRORS = {
    "undelivered": [
        (30003, "Unreachable destination handset"),
        (30005, "Unknown destination handset"),
        (30006, "Landline or unreachable carrier"),
        (30007, "Carrier violation"),
        (30008, "Unknown error"),
    ],
    "failed": [
        (21610, "Attempt to send to unsubscribed recipient"),
        (21614, "'To' number is not a valid mobile number"),
        (30034, "Message from an Unregistered Number"),
        (21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number"),
        (63016, "Failed to send freeform message because you are outside the allowed window."),
    ],
}
_LEGACY_ERROR_JSON = {k: [(str(c), _js(m)) for c, m in v] for k, v in LEGACY_ERRORS.items()}
_LEGACY_STATUS = Picker(
    {
        "delivered": 40, "sent": 9, "read": 2, "received": 20, "undelivered": 6, "failed": 6,
        "queued": 3, "accepted": 3, "scheduled": 3, "canceled": 1.5, "sending": 1.5,
        "receiving": 0.6, "partially_delivered": 0.2,
    }
)  # fmt: skip
LEGACY_STATUSES = frozenset(_LEGACY_STATUS.values)
# Months-old messages are all in a final status; about one in ten was never sent: failed
# before sending (half of "failed"), canceled (only scheduled messages can be), or
# undelivered without ever leaving ("undelivered:unsent", a pool of its own).
_HISTORY_STATUS = Picker(
    {
        "delivered": 45, "sent": 8, "read": 2, "received": 22, "undelivered": 7, "undelivered:unsent": 2,
        "failed": 8, "canceled": 3, "partially_delivered": 0.2,
    }
)  # fmt: skip
_NO_DATE_SENT = frozenset({"queued", "accepted", "scheduled", "canceled", "sending", "receiving"})
_LAGGING = frozenset({"delivered", "undelivered", "read"})  # a receipt arrives after sending
_OUT_DIRECTION = Picker({"outbound-api": 80, "outbound-reply": 15, "outbound-call": 5})
_LEGACY_TAGS = [
    _js({"campaign_name": "Spring Sale 2022", "message_type": "cart_abandoned"}),
    _js({"campaign_name": "Black Friday", "message_type": "promotion"}),
    _js({"message_type": "otp"}),
]
_LEGACY_TEN_TAGS = _js({f"tag_{i:02d}": f"value {i} ✓" for i in range(10)})


class LegacyRecord(NamedTuple):
    """A generated legacy message: its JSON and the facts the emulator indexes it by."""

    json: str
    sid: str
    created_ms: int
    sent_ms: int | None
    to: str
    from_: str | None


class _Variant(NamedTuple):
    """Everything about a legacy message except its SID, customer and timestamps, pre-encoded.

    The JSON fragments a-e surround the per-record parts, in the fixtures' key order.
    """

    a: str  # '{"account_sid":...,"body":...,"date_created":"'
    b: str  # '","direction":...,"error_message":...,"from":'
    c: str  # ',"messaging_service_sid":...,"price_unit":"USD","sid":"'
    d: str  # '","status":...,"subresource_uris":{"media":"'
    e: str  # '"tags":...,"to":'
    inbound: bool
    whatsapp: bool
    own: str  # our number (or short code, or alphanumeric sender)
    unassigned: bool  # a Messaging Service has not picked the sender yet: from is null
    mms: bool
    sent_after_s: int | None  # date_sent - date_created, or None for a null date_sent
    lag_s: int  # date_updated - (date_sent or date_created)


class LegacyFactory:
    """Makes 2010-04-01 Message records for one account.

    A record is a variant (drawn from a per-status pool: body, price, error, tags, channel,
    direction...) plus its own SID, customer number and timestamps. Drawing from a pool
    is what makes 200k records quick; the pool is large enough that records still vary.
    """

    def __init__(self, rng: random.Random, account_sid: str, mms_share: float = MMS_SHARE):
        self.rng = rng
        self.account_sid = account_sid
        self.mms_share = mms_share
        self.prefix = f"/2010-04-01/Accounts/{account_sid}/Messages/"
        self.customers = _numbers(rng, 4000)
        self.own_numbers = ["+14155550100", "+12065550123", "+18885550199", "22395", "ACMECO"]
        self.services = [f'"{hex_sid("MG", rng)}"' for _ in range(3)]
        self.pool_size = 64
        self.pools: dict[str, list[_Variant]] = {}

    def _variant(self, status: str, unsent: bool = False) -> _Variant:
        """A variant in `status`; `unsent` forces a null date_sent (drawing nothing for it)."""
        rng = self.rng
        r = rng.random
        inbound = status in ("received", "receiving")
        whatsapp = r() < 0.08
        # 1 to MAX_MEDIA items, most messages one or two (the draws are those 1 to 3 items took).
        media = (1 + int(r() ** 2 * MAX_MEDIA)) if r() < self.mms_share else 0
        _, segs, body = pick_body(rng)
        if (media and r() < 0.3) or r() < 0.02:
            body = '""'  # a picture without a caption, or a redacted body
        own = self.own_numbers[int(r() * (3 if whatsapp or inbound else 5))]
        if whatsapp:
            own = "whatsapp:" + own
        unassigned = status in ("accepted", "scheduled")  # a Messaging Service picks the sender later
        service = self.services[int(r() * 3)] if unassigned or r() < 0.6 else "null"
        sent_after = None
        if not unsent and status not in _NO_DATE_SENT and not (status == "failed" and r() < 0.5):
            sent_after = int(r() * 5)
        if sent_after is not None:
            lag = int(r() * 30) if status in _LAGGING else 0
        else:
            lag = int(60 + r() * 3600) if status == "canceled" else 0
        error_code = error_message = "null"
        if status in _LEGACY_ERROR_JSON:
            error_code, error_message = _LEGACY_ERROR_JSON[status][int(r() * 5)]
        price = "null"
        if sent_after is not None and r() >= 0.05:
            unit = 0.02 if media else (0.005 if whatsapp else 0.0079 * int(segs))
            price = f'"-{unit:.5f}"'
        t = r()
        tags = _LEGACY_TEN_TAGS if t < 0.03 else (_LEGACY_TAGS[int(t * 100) % 3] if t < 0.15 else "{}")
        direction = "inbound" if inbound else _OUT_DIRECTION(rng)
        return _Variant(
            a=f'{{"account_sid":"{self.account_sid}","api_version":"2010-04-01","body":{body},"date_created":"',
            b=f'","direction":"{direction}","error_code":{error_code},"error_message":{error_message},"from":',
            c=f',"messaging_service_sid":{service},"num_media":"{media}","num_segments":"{"0" if unassigned else segs}",'
            f'"price":{price},"price_unit":"USD","sid":"',
            d=f'","status":"{status}","subresource_uris":{{"media":"',
            e=f'"tags":{tags},"to":',
            inbound=inbound, whatsapp=whatsapp, own=own, unassigned=unassigned, mms=media > 0,
            sent_after_s=sent_after, lag_s=lag,
        )  # fmt: skip

    def _pool(self, name: str) -> list[_Variant]:
        """The variants of a pool: a status, or `status:unsent` for that status with no date_sent."""
        pool = self.pools.get(name)
        if pool is None:
            status, _, kind = name.partition(":")
            pool = self.pools[name] = [self._variant(status, kind == "unsent") for _ in range(self.pool_size)]
        return pool

    def record(self, created_ms: int, now_ms: int, status: str | None = None, sid: str | None = None) -> LegacyRecord:
        """One message created at `created_ms` (whole seconds), in `status` or a random one."""
        rng = self.rng
        r = rng.random
        status = status or _LEGACY_STATUS(rng)
        pool = self.pools.get(status) or self._pool(status)
        v = pool[int(r() * len(pool))]
        sid = sid or ("MM%032x" if v.mms else "SM%032x") % rng.getrandbits(128)
        customer = self.customers[int(r() * 4000)]
        if v.whatsapp:
            customer = "whatsapp:" + customer
        created = rfc2822(created_ms)
        if v.sent_after_s is None:
            sent_ms = None
            sent_json = "null"
            updated_ms = min(created_ms + v.lag_s * 1000, max(now_ms, created_ms))
            updated = created if updated_ms == created_ms else rfc2822(updated_ms)
        else:
            sent_ms = created_ms + v.sent_after_s * 1000
            sent = rfc2822(sent_ms)
            sent_json = f'"{sent}"'
            updated_ms = min(sent_ms + v.lag_s * 1000, max(now_ms, sent_ms))
            updated = sent if updated_ms == sent_ms else rfc2822(updated_ms)
        if v.inbound:
            to, from_ = v.own, customer
            from_json = f'"{customer}"'
        else:
            to, from_ = customer, None if v.unassigned else v.own
            from_json = "null" if from_ is None else f'"{from_}"'
        base = self.prefix + sid
        text = (
            f'{v.a}{created}","date_sent":{sent_json},"date_updated":"{updated}{v.b}{from_json}{v.c}{sid}{v.d}'
            f'{base}/Media.json","feedback":"{base}/Feedback.json"}},{v.e}"{to}","uri":"{base}.json"}}'
        )
        return LegacyRecord(text, sid, created_ms, sent_ms, to, from_)

    def bulk(self, n: int, now_ms: int, days: int, history: int = 0, history_days: int = 400) -> Iterator[LegacyRecord]:
        """`n` records created over the last `days` days, newest first, then `history` created
        between `days` and `history_days` days ago, then a few past retention.

        Newest first so the emulator's index sort sees nearly ordered keys (several times
        faster than sorting random ones). History records are all in final statuses
        (`_HISTORY_STATUS`); they keep three minutes clear of the recent ones and an hour
        clear of `history_days`, so a test that runs a while does not see them expire at
        400. The extra records are 401-430 days old, so the list never shows them: they
        exist to prove retention hides them.
        """
        rng = self.rng
        total = n + history
        self.pool_size = max(32, min(512, total // 20))  # more records, more variety
        span_s = max(1, days * 86_400 - 180)
        ages = sorted(int(60 + rng.random() * span_s) for _ in range(n))
        history_ages: list[int] = []
        if history:
            start_s = days * 86_400 + 180
            history_span_s = max(1, history_days * 86_400 - 3600 - start_s)
            history_ages = sorted(int(start_s + rng.random() * history_span_s) for _ in range(history))
        expired = sorted(int(86_400 * (401 + rng.random() * 29)) for _ in range(2 + total // 5000 if total else 0))
        showcase = self._showcase() if n >= SHOWCASE_MIN else []
        every = n // len(showcase) if showcase else 0
        for i, age in enumerate(ages):
            if showcase and i % every == 0 and i // every < len(showcase):
                status, mms, fields = showcase[i // every]
                yield self._patched(self.record(now_ms - age * 1000, now_ms, status, message_sid(rng, mms)), fields)
            else:
                yield self.record(now_ms - age * 1000, now_ms)
        for age in history_ages:
            yield self.record(now_ms - age * 1000, now_ms, _HISTORY_STATUS(rng))
        for age in expired:
            yield self.record(now_ms - age * 1000, now_ms)

    def _showcase(self) -> list[tuple[str, bool, dict[str, Any]]]:
        """One record of each awkward kind, so even a small data set holds them all:
        (status, MMS sid?, fields to force)."""
        customer = self.customers[0]
        long_body = (_LOREM * 9)[:1600]
        return [
            ("delivered", False, {"body": "👍🏽 sounds good 👨‍👩‍👧‍👦 𝕏", "num_segments": "1"}),
            ("received", False, {"body": long_body, "num_segments": str(segments(long_body))}),
            ("delivered", False, {"body": ""}),
            ("queued", False, {}),
            ("accepted", False, {}),
            ("scheduled", False, {}),
            ("failed", False, {"date_sent": None, "price": None}),
            ("undelivered", False, {}),
            ("delivered", False, {"price": None}),
            ("delivered", False, {"from": "whatsapp:+14155238886", "to": "whatsapp:" + customer}),
            ("received", True, {"num_media": "2", "to": "+14155550100", "from": customer}),
            ("delivered", False, {"tags": orjson.loads(_LEGACY_TEN_TAGS)}),
        ]

    @staticmethod
    def _patched(rec: LegacyRecord, fields: dict[str, Any]) -> LegacyRecord:
        payload = orjson.loads(rec.json)
        payload.update(fields)
        sent = rec.sent_ms if payload["date_sent"] is not None else None
        return LegacyRecord(_js(payload), rec.sid, rec.created_ms, sent, payload["to"], payload["from"])


# ---------------------------------------------------------------- v1 Comms

V1_STATUS_STAT = {
    "QUEUED": "queued", "SENT": "sent", "SCHEDULED": "scheduled", "DELIVERED": "delivered",
    "READ": "read", "UNDELIVERED": "undelivered", "FAILED": "failed", "CANCELED": "canceled",
    # A group message's per-recipient state lives in its Receipts; the Operation saw it sent.
    "GROUP": "sent",
}  # fmt: skip
V1_STATUSES = frozenset({*V1_STATUS_STAT, "INBOUND"})
V1_CHANNELS = ("SMS", "RCS", "WHATSAPP")
V1_ERRORS = [
    (30003, "Unreachable destination handset"),
    (30005, "Unknown destination handset"),
    (30007, "Message filtered"),
    (21610, "Attempt to send to unsubscribed recipient"),
    (63016, "Failed to send freeform message because you are outside the allowed window."),
]
_DONE_STATUS = Picker({"DELIVERED": 62, "SENT": 12, "READ": 8, "UNDELIVERED": 8, "FAILED": 8, "CANCELED": 2})
_LIVE_STATUS = Picker({"QUEUED": 50, "SENT": 30, "DELIVERED": 20})
_CHANNEL = Picker({"SMS": 80, "WHATSAPP": 12, "RCS": 8})
_OP_SIZE = Picker({1: 70, 5: 20, 50: 8, 400: 2})
_V1_TAGS = [
    _js({"campaign": "spring-sale-2025"}),
    _js({"campaign": "black-friday", "region": "EMEA"}),
    _js({"type": "otp"}),
]
_V1_TEN_TAGS = _js({f"key_{i}": f"value.{i}~x" for i in range(10)})
_LAG_S = {"QUEUED": 0, "SCHEDULED": 0, "INBOUND": 0, "SENT": 2, "CANCELED": 600}


def attempt_count(status: object, message_id: str) -> int:
    """Sending attempts a message has had: none before sending or for INBOUND; FAILED ones sometimes two."""
    if status in ("SCHEDULED", "QUEUED", "CANCELED", "INBOUND") or not isinstance(status, str):
        return 0
    if status == "FAILED" and message_id and ord(message_id[-1]) % 2:
        return 2
    return 1


def message_error(message_id: str) -> dict:
    code, message = V1_ERRORS[sum(map(ord, message_id)) % len(V1_ERRORS)]
    return {"code": code, "message": message, "infoUrl": f"https://www.twilio.com/docs/api/errors/{code}"}


def operation_stats(members: list[tuple[object, int, int]], unaddressable: int = 0) -> dict[str, int]:
    """Stats of an Operation from its messages' (status, recipients, attempts).

    Each message counts once, under its current status, so the status counters sum to
    `total`; `recipients` counts every addressee of every message plus the unaddressable.
    """
    stats = {
        "total": len(members), "recipients": unaddressable, "queued": 0, "sent": 0, "scheduled": 0,
        "delivered": 0, "read": 0, "undelivered": 0, "unaddressable": unaddressable, "failed": 0,
        "canceled": 0, "attempts": 0,
    }  # fmt: skip
    for status, recipients, attempts in members:
        stats["recipients"] += recipients
        stats["attempts"] += attempts
        name = V1_STATUS_STAT.get(status)  # type: ignore[arg-type]
        if name:
            stats[name] += 1
    return stats


def operation_status(statuses: list[object]) -> str:
    """SCHEDULED | PROCESSING | COMPLETED | CANCELED from the messages' statuses."""
    if "QUEUED" in statuses:
        return "PROCESSING"
    if "SCHEDULED" in statuses:
        return "SCHEDULED"
    if statuses and all(s == "CANCELED" for s in statuses):
        return "CANCELED"
    return "COMPLETED"


class CommsMessage(NamedTuple):
    """A generated v1 message: its list JSON, the facts the emulator indexes, and what Fetch adds."""

    json: str
    id: str
    created_ms: int
    updated_ms: int
    status: str
    channel: str
    op_id: str | None
    recipients: int
    text: str
    media: int


class Operation(NamedTuple):
    """A generated Operation: its messages and the recipients it could not address."""

    id: str
    created_ms: int
    messages: list[CommsMessage]
    unaddressable: int


class _Send(NamedTuple):
    """What every message of one Operation shares."""

    channel: str
    sender: str  # JSON of the sending agent
    related: str  # JSON
    tags: str  # JSON
    scheduled: str  # JSON
    text: str
    media: int


class CommsFactory:
    """Makes v1 Comms messages and the Operations that sent them, for one account."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.customers = _numbers(rng, 4000)
        self.profiles = ["mem_profile_" + ulid(1_700_000_500_000 + i, rng) for i in range(50)]
        senders = {
            "SMS": ["+14155550100", "+12065558844"],
            "WHATSAPP": ["+14155238886"],
            "RCS": ["rcs:acme_notifications_agent"],
        }
        pool = "comms_senderpool_" + ulid(1_700_000_400_000, rng)
        self.agents: dict[str, list[str]] = {}
        for channel, addresses in senders.items():
            agents = [{"address": a, "channel": channel, "senderId": "comms_sender_" + ulid(1_700_000_000_000, rng)} for a in addresses]
            if channel == "SMS":  # some sends went through a sender pool
                agents.append({**agents[0], "senderPoolId": pool})
            self.agents[channel] = [_js(a) for a in agents]

    def _send(self, channel: str, op_id: str | None, scheduled_ms: int | None = None, ten_tags: bool = False) -> _Send:
        rng = self.rng
        r = rng.random
        agents = self.agents[channel]
        text, _, _ = pick_body(rng)
        t = 0.0 if ten_tags else r()
        related = "[]"
        if op_id is not None:
            related = f'[{{"name":"OPERATION","id":"{op_id}","uri":"{COMMS_BASE}/Messages/Operations/{op_id}"}}]'
        return _Send(
            channel=channel,
            sender=agents[int(r() * len(agents))],
            related=related,
            tags=_V1_TEN_TAGS if t < 0.03 else (_V1_TAGS[int(t * 100) % 3] if t < 0.15 else "{}"),
            scheduled="null" if scheduled_ms is None else f'"{rfc3339(scheduled_ms)}"',
            text=text,
            media=(1 + int(r() * 2)) if channel == "SMS" and r() < 0.05 else 0,
        )

    def _contact(self, kind: str) -> str:
        r = self.rng.random
        address = self.customers[int(r() * 4000)]
        if r() < 0.2:
            profile = self.profiles[int(r() * 50)]
            return f'{{"address":"{address}","channel":"{kind}","profileId":"{profile}"}}'
        return f'{{"address":"{address}","channel":"{kind}"}}'

    def message(self, send: _Send, created_ms: int, now_ms: int, status: str, op_id: str | None,
                recipients: int = 1, millis: bool = False, deleted: bool = False) -> CommsMessage:  # fmt: skip
        """One message of a send. INBOUND ones come from a contact to our sender."""
        rng = self.rng
        r = rng.random
        if not millis:
            created_ms -= created_ms % 1000
        kind = "WHATSAPP" if send.channel == "WHATSAPP" else "PHONE"
        if status == "INBOUND":
            sender, to = self._contact(kind), f"[{send.sender}]"
        elif recipients == 1:
            sender, to = send.sender, f"[{self._contact(kind)}]"
        else:
            sender, to = send.sender, "[" + ",".join(self._contact(kind) for _ in range(recipients)) + "]"
        updated_ms = max(created_ms, min(now_ms, created_ms + int(r() * _LAG_S.get(status, 30) * 1000)))
        gone = deleted or r() < 0.005  # deleted later: deletedAt set, the record stays
        if gone:
            updated_ms = max(updated_ms, min(now_ms, created_ms + int(r() * 48 * HOUR_MS)))
        if not millis:  # what is served is what is indexed: whole seconds throughout
            updated_ms -= updated_ms % 1000
        created = rfc3339(created_ms, millis)
        updated = created if updated_ms == created_ms else rfc3339(updated_ms, millis)
        deleted_at = f'"{updated}"' if gone else "null"
        mid = "comms_message_" + ulid(created_ms, rng)
        text = (
            f'{{"createdAt":"{created}","from":{sender},"id":"{mid}","related":{send.related},'
            f'"scheduledFor":{send.scheduled},"status":"{status}","tags":{send.tags},"to":{to},'
            f'"updatedAt":"{updated}","deletedAt":{deleted_at}}}'
        )
        return CommsMessage(text, mid, created_ms, updated_ms, status, send.channel, op_id, recipients, send.text, send.media)

    def single(self, created_ms: int, now_ms: int, status: str, channel: str, op_id: str | None) -> CommsMessage:
        """One stand-alone message (for inserts): its own send, in its own Operation if `op_id`."""
        send = self._send(channel, op_id)
        return self.message(send, created_ms, now_ms, status, op_id, millis=created_ms % 1000 != 0)

    def operation(self, n: int, created_ms: int, now_ms: int, group: bool = False, *,
                  channel: str | None = None, mode: str | None = None, ten_tags: bool = False) -> Operation:  # fmt: skip
        """An Operation of `n` messages on one channel, or of one GROUP message if `group`.

        Young operations are still PROCESSING; a few are SCHEDULED for the future or
        CANCELED; the rest are COMPLETED (`mode` forces one of SCHEDULED or CANCELED).
        Messages come newest first, like everything else.
        """
        rng = self.rng
        r = rng.random
        created_ms -= created_ms % 1000
        op_id = "comms_operation_" + ulid(created_ms, rng)
        if group:
            send = self._send("SMS", op_id)
            message = self.message(send, created_ms + 5, now_ms, "GROUP", op_id, recipients=2 + int(r() * 8))
            return Operation(op_id, created_ms, [message], 0)
        kind = {"SCHEDULED": 0.0, "CANCELED": 0.07, "LIVE": 0.0}.get(mode or "", r())
        pick: Picker | str = _DONE_STATUS
        scheduled = None
        if (now_ms - created_ms < HOUR_MS and kind < 0.6) or mode == "LIVE":
            pick = _LIVE_STATUS
        elif kind < 0.075:
            pick = "SCHEDULED" if kind < 0.06 else "CANCELED"
            scheduled = now_ms + int(HOUR_MS * (1 + r() * 71)) // 1000 * 1000
        send = self._send(channel or _CHANNEL(rng), op_id, scheduled, ten_tags)
        make = self.message
        msgs = [
            make(send, created_ms + 3 + i * 7 + int(r() * 5), now_ms,
                 # A forced in-flight Operation has at least one message still QUEUED.
                 "QUEUED" if mode == "LIVE" and i == 0 else pick if isinstance(pick, str) else pick(rng),
                 op_id, millis=r() < 0.3)
            for i in range(n - 1, -1, -1)
        ]  # fmt: skip
        # Now and then a recipient has no address the sender's channel can reach.
        unaddressable = int(r() * 4) if r() < 0.03 else 0
        return Operation(op_id, created_ms, msgs, unaddressable)

    def bulk(self, n: int, now_ms: int) -> Iterator[Operation | CommsMessage]:
        """`n` visible messages over the last 7 days, plus a few past retention.

        Yields Operations (with their messages), 2% of them one GROUP message, then
        stand-alone INBOUND messages (12% of `n`), each run newest first. Records keep an
        hour clear of the 7-day edge so a test that runs a while does not see them expire.
        """
        rng = self.rng
        window = COMMS_RETENTION_MS - HOUR_MS - 180_000
        inbound = n * 12 // 100
        sizes: list[int] = []
        left = n - inbound
        while left > 0:
            if rng.random() < 0.02:
                sizes.append(-1)  # one GROUP message to several recipients
                left -= 1
                continue
            k = min(left, max(1, int(_OP_SIZE(rng) * (0.5 + rng.random()))))
            sizes.append(k)
            left -= k
        ages = sorted(120_000 + int(rng.random() * window) for _ in sizes)
        # One Operation of each awkward kind, spread through the week, so even a small
        # data set holds them all (a GROUP one comes from the sizes drawn above, or here).
        showcase: list[dict[str, Any]] = []
        if n >= SHOWCASE_MIN and len(sizes) >= 8:
            showcase = [
                {"mode": "LIVE"}, {"group": True}, {"channel": "WHATSAPP"}, {"channel": "RCS"},
                {"mode": "SCHEDULED"}, {"mode": "CANCELED"}, {"ten_tags": True}, {"channel": "SMS"},
            ]  # fmt: skip
        every = len(sizes) // len(showcase) if showcase else 0
        for i, (k, age) in enumerate(zip(sizes, ages)):
            forced = showcase[i // every] if showcase and i % every == 0 and i // every < len(showcase) else {}
            if forced.get("mode") == "LIVE":  # still in flight: sent minutes ago
                age = min(age, 300_000)
            if forced.get("group"):
                yield self.operation(1, now_ms - age, now_ms, group=True)
                if k > 1:  # keep the count: the rest of this slot's messages go to a plain Operation
                    yield self.operation(k - 1, now_ms - age - 1000, now_ms)
            else:
                yield self.operation(abs(k), now_ms - age, now_ms, group=k < 0, **forced)
        for i, age in enumerate(sorted(60_000 + int(rng.random() * window) for _ in range(inbound))):
            send = self._send(_CHANNEL(rng), None)
            # The first inbound message was deleted later: deletedAt is set, the record stays.
            yield self.message(send, now_ms - age, now_ms, "INBOUND", None, millis=rng.random() < 0.3, deleted=i == 0)
        for _ in range(2 + n // 5000 if n else 0):
            at = now_ms - COMMS_RETENTION_MS - int(DAY_MS * (1 + rng.random() * 2))
            yield self.operation(1 + int(rng.random() * 3), at, now_ms)
            yield self.message(self._send("SMS", None), at + 1000, now_ms, "INBOUND", None)


def comms_content(text: str, media: int, channel: str | None, created: str, expires: str, message_id: str) -> dict:
    """The resolved `content` of a fetched v1 message, shaped by its channel."""
    if channel == "WHATSAPP":
        return {"modules": [{"whatsapp": {"type": "text", "text": {"body": text}}}]}
    if channel == "RCS":
        return {"modules": [{"rcs": {"text": text}}]}
    content: dict[str, Any] = {"text": text}
    if media:
        content["media"] = [
            {
                "fileName": f"image{i}.jpg",
                "fileSize": 48_213 + i,
                "mimeType": "image/jpeg",
                "contentReference": {
                    "temporaryUrl": f"https://media.comms.twilio.com/{message_id}/{i}?sig=emulator",
                    "expiresAt": expires,
                },
                "updatedAt": created,
                "createdAt": created,
                "deletedAt": None,
            }
            for i in range(media)
        ]
    return content
