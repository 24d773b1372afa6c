"""v1 message content: the list carries metadata only; `GET /v1/Messages/{id}` adds the text
(`content`) and the delivery attempts. New and changed messages wait in the archive itself
(comms_messages.hydrated_at IS NULL, which the list upsert sets on every change), so the
queue survives restarts and needs no bookkeeping of its own."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import anyio
import orjson

from sync import errors, logs, parsing
from sync.http import TwilioClient
from sync.models import COMMS_RETENTION, RETENTION_MARGIN
from sync.observe import NOBODY, Observer
from sync.privacy import KEEP, Bodies
from sync.sources import comms
from sync.store import Store

log = logs.get(__name__)

BATCH = 200
CONCURRENCY = 4  # requests of this kind in flight; the list scans share the account's limit


def content_text(content: Any) -> str | None:
    """The message text in a resolved `content`: `text` (SMS), or the first text of its
    channel modules (`{"modules": [{"whatsapp": {"text": {"body": ...}}}]}`, `{"rcs": {"text": ...}}`)."""
    if isinstance(content, dict):
        text = content.get("text")
        if isinstance(text, str):
            return text
        if isinstance(text, dict) and isinstance(text.get("body"), str):
            return text["body"]
        for value in content.values():
            found = content_text(value)
            if found is not None:
                return found
    elif isinstance(content, list):
        for item in content:
            found = content_text(item)
            if found is not None:
                return found
    return None


def _hide_text(value: Any, bodies: Bodies) -> Any:
    """The privacy policy applied to every text of a content: `text` and `body` strings."""
    if isinstance(value, dict):
        return {k: bodies.apply(v) if k in ("text", "body") and isinstance(v, str) else _hide_text(v, bodies)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_hide_text(v, bodies) for v in value]
    return value


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(parsing.storable(value)[0]).decode()


def hydration(message_id: str, changed_at: datetime, fetched: Any, bodies: Bodies) -> tuple:
    """The stored form of one fetched message: (id, changed_at, body, content, attempts)."""
    if not isinstance(fetched, dict):
        return message_id, changed_at, None, None, None
    content = fetched.get("content")
    if bodies.mode != "keep":
        content = _hide_text(content, bodies)
    body = content_text(content)
    return message_id, changed_at, None if body is None else parsing.storable(body)[0], _json(content), \
        _json(fetched.get("attempts"))


async def hydrate(store: Store, client: TwilioClient, account_sid: str, *, bodies: Bodies = KEEP,
                  until: float | None = None, observer: Observer = NOBODY) -> int:
    """Fetch new and changed v1 messages, newest first, until none wait (or `until`, an
    anyio.current_time() deadline, passes between batches); how many were stored."""
    done = 0
    limiter = anyio.CapacityLimiter(CONCURRENCY)
    while until is None or anyio.current_time() < until:
        since = datetime.now(timezone.utc) - COMMS_RETENTION + RETENTION_MARGIN  # older ones Twilio no longer has
        waiting = await store.hydration.waiting(account_sid, since, BATCH)
        if not waiting:
            break
        fetched: list[tuple] = []

        async def one(message_id: str, changed_at: datetime) -> None:
            async with limiter:
                try:
                    body = await client.get_json("comms", comms.message_url(account_sid, message_id))
                    outcome = "ok"
                except errors.FatalSourceError as exc:
                    if exc.status != 404:
                        raise
                    body, outcome = None, "gone"  # deleted or aged out since it was listed
            fetched.append(hydration(message_id, changed_at, body, bodies))
            observer.hydrated(account_sid, outcome)

        async with anyio.create_task_group() as tg:
            for message_id, changed_at in waiting:
                tg.start_soon(one, message_id, changed_at)
        await store.hydration.save(fetched)
        done += len(fetched)
    if done:
        log.info("hydrate.done", account=account_sid, messages=done)
    return done
