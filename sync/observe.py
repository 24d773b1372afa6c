"""What the scan machinery tells whoever watches it: one interface for every kind of event.

The HTTP client, the Postgres edge, the scan loop, hydration and the service each take an
`Observer` and tell it what happened; none of them knows who listens. The base class does
nothing, so a watcher implements only what it cares about: `metrics.Metrics` counts
everything, `machinery` keeps an account's Retry-After pause. `machinery` wires them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sync.models import Counts


class Observer:
    """Told of each event; does nothing with it. Calls are made in the event's task, so an
    implementation must be quick and must not raise."""

    def response(self, api: str, status: int) -> None:
        """Twilio answered a request of `api` ("comms" or "api") with HTTP `status`."""

    def retry(self, target: str, cause: str) -> None:
        """An operation on `target` ("twilio" or "postgres") is tried again, because of `cause`
        (an HTTP status, "connection" or "malformed"; a driver error's class name)."""

    async def pause(self, account_sid: str, until: datetime) -> None:
        """Twilio asked the account to make no request before `until` (Retry-After)."""

    def budget(self, account_sid: str, window: int, in_flight: int, concurrent: int | None) -> None:
        """After an answer: the account's concurrency window (budget.py), its requests in flight,
        and the last Twilio-Concurrent-Requests seen (None before any)."""

    def page_saved(self, account_sid: str, stream: str, counts: Counts) -> None:
        """A page and its checkpoint committed: what the API served and what was written."""

    def hydrated(self, account_sid: str, outcome: str) -> None:
        """A v1 message was fetched for its content: "ok", or "gone" (404)."""

    def media_listed(self, account_sid: str, outcome: str, items: int, rejected: int) -> None:
        """A legacy message's media list was read: "read" (serving `items` rows and `rejected`
        items that could not be stored), or "gone" (404)."""

    def media_counts(self, account_sid: str, archived: int, owed: int) -> None:
        """After media was followed: the account's media items archived, messages still owing theirs."""

    def scan_ended(self, account_sid: str, stream: str, kind: str, outcome: str, seconds: float,
                   order: str | None = None) -> None:
        """A scan ended, "complete" (in `seconds`, seeing the legacy list in `order`) or "failed"."""

    def deleted(self, account_sid: str, stream: str, count: int) -> None:
        """A complete scan proved `count` archived records gone and marked them deleted."""

    def refreshed(self, view: str, seconds: float, days: int) -> None:
        """The analysts' `view` was refreshed in `seconds`, recomputing `days` (account, day)s."""


NOBODY = Observer()


class Observers(Observer):
    """Several observers, each told every event in turn."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def response(self, api: str, status: int) -> None:
        for o in self.observers:
            o.response(api, status)

    def retry(self, target: str, cause: str) -> None:
        for o in self.observers:
            o.retry(target, cause)

    async def pause(self, account_sid: str, until: datetime) -> None:
        for o in self.observers:
            await o.pause(account_sid, until)

    def budget(self, account_sid: str, window: int, in_flight: int, concurrent: int | None) -> None:
        for o in self.observers:
            o.budget(account_sid, window, in_flight, concurrent)

    def page_saved(self, account_sid: str, stream: str, counts: Counts) -> None:
        for o in self.observers:
            o.page_saved(account_sid, stream, counts)

    def hydrated(self, account_sid: str, outcome: str) -> None:
        for o in self.observers:
            o.hydrated(account_sid, outcome)

    def media_listed(self, account_sid: str, outcome: str, items: int, rejected: int) -> None:
        for o in self.observers:
            o.media_listed(account_sid, outcome, items, rejected)

    def media_counts(self, account_sid: str, archived: int, owed: int) -> None:
        for o in self.observers:
            o.media_counts(account_sid, archived, owed)

    def scan_ended(self, account_sid: str, stream: str, kind: str, outcome: str, seconds: float,
                   order: str | None = None) -> None:
        for o in self.observers:
            o.scan_ended(account_sid, stream, kind, outcome, seconds, order)

    def deleted(self, account_sid: str, stream: str, count: int) -> None:
        for o in self.observers:
            o.deleted(account_sid, stream, count)

    def refreshed(self, view: str, seconds: float, days: int) -> None:
        for o in self.observers:
            o.refreshed(view, seconds, days)
