"""What the service counts, in the Prometheus text format served on /metrics.

One `Metrics` per process, on its own registry (not the library's global one), so tests and
several services in one process never share counters. The names below are a contract with
deploy/prometheus/alerts.yml and deploy/grafana/: tests/unit/test_deploy.py holds them to it.

`Metrics` is an `observe.Observer`: the machinery tells it each event, and it counts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from sync.observe import Observer

if TYPE_CHECKING:
    from sync.models import Counts

# The *_created series double the output and no alert or panel uses them.

disable_created_metrics()

PREFIX = "twilio_archive"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# A look-back scan takes a second or two; a full scan of a busy account, minutes.
SCAN_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


# The `account` label's value for every account when the metrics are not per account.
ALL_ACCOUNTS = "*"


class Metrics(Observer):
    """`per_account` (run --metrics-per-account): the `account` label names each account. Off by
    default: an ISV's 500 subaccounts would make some 20,000 series per replica, so every account's
    samples go under account="*" (counters summed; the budget's gauges, meaningless summed, are
    not set), and `accounts_unscanned` says whether any account stopped syncing."""

    def __init__(self, per_account: bool = False) -> None:
        self.per_account = per_account
        self.registry = r = CollectorRegistry(auto_describe=True)
        stream = ["account", "stream"]
        self.pages = Counter(f"{PREFIX}_pages", "Pages saved, each with its checkpoint", stream, registry=r)
        self.records_fetched = Counter(f"{PREFIX}_records_fetched", "Records the API served", stream, registry=r)
        self.rows_written = Counter(f"{PREFIX}_rows_written", "Archive rows actually changed: inserted or updated",
                                    [*stream, "change"], registry=r)
        self.records_outside = Counter(f"{PREFIX}_records_outside_window",
                                       "Records the API served that were created outside the scan's window: what "
                                       "the list's order costs beyond the window", stream, registry=r)
        self.records_deleted = Counter(f"{PREFIX}_records_deleted",
                                       "Legacy messages marked deleted after a complete scan proved them gone",
                                       stream, registry=r)
        self.records_rejected = Counter(f"{PREFIX}_records_rejected",
                                        "Records kept aside in twilio.rejected_records", stream, registry=r)
        self.hydrations = Counter(f"{PREFIX}_hydrations", "v1 messages fetched one by one for their content",
                                  ["account", "outcome"], registry=r)
        self.media_lists = Counter(f"{PREFIX}_media_lists", "Media lists of legacy messages read, by outcome "
                                   "(read, or gone: 404)", ["account", "outcome"], registry=r)
        self.media_items = Counter(f"{PREFIX}_media_items", "Media items the media lists served, by whether they "
                                   "were stored (stored) or kept aside in twilio.rejected_records (rejected)",
                                   ["account", "outcome"], registry=r)
        self.media_archived = Gauge(f"{PREFIX}_media_archived", "Media items in twilio.legacy_media, deleted ones "
                                    "included, after the last media pass", ["account"], registry=r)
        self.media_owed = Gauge(f"{PREFIX}_media_owed", "Legacy messages with media whose media list is still to "
                                "be read, after the last media pass", ["account"], registry=r)
        self.api_responses = Counter(f"{PREFIX}_api_responses", "Twilio API responses by HTTP status",
                                     ["api", "code"], registry=r)
        self.retries = Counter(f"{PREFIX}_retries", "Retried operations by cause", ["target", "cause"], registry=r)
        self.rate_limited = Counter(f"{PREFIX}_rate_limited", "429 Too Many Requests answers", ["api"], registry=r)
        self.concurrency_window = Gauge(f"{PREFIX}_concurrency_window",
                                        "Requests the account's concurrency budget lets be in flight now "
                                        "(halved by a 429, back up to --concurrency)", ["account"], registry=r)
        self.requests_in_flight = Gauge(f"{PREFIX}_requests_in_flight",
                                        "The account's requests to Twilio in flight, at the last answer",
                                        ["account"], registry=r)
        self.twilio_concurrent = Gauge(f"{PREFIX}_twilio_concurrent_requests",
                                       "The last Twilio-Concurrent-Requests header: the account's requests in "
                                       "flight as Twilio counts them, other applications' included",
                                       ["account"], registry=r)
        scan = [*stream, "kind"]
        self.scans = Counter(f"{PREFIX}_scans", "Scans ended, by outcome", [*scan, "outcome"], registry=r)
        self.list_order = Counter(f"{PREFIX}_scan_list_order",
                                  "Complete legacy scans by the order their pages showed (plan.ORDERS); "
                                  "'unordered' means the whole list was read", [*scan, "order"], registry=r)
        self.scan_duration = Histogram(f"{PREFIX}_scan_duration_seconds", "Duration of complete scans", scan,
                                       buckets=SCAN_BUCKETS, registry=r)
        self.last_success = Gauge(f"{PREFIX}_last_success_timestamp_seconds",
                                  "Unix time the last scan of this kind completed", scan, registry=r)
        self.newest_record_age = Gauge(f"{PREFIX}_newest_record_age_seconds",
                                       "Seconds since the creation of the newest archived record", stream, registry=r)
        self.accounts_unscanned = Gauge(f"{PREFIX}_accounts_unscanned",
                                        "Accounts (not closed) no replica has started a round of within "
                                        "max(3 intervals, 5 min): each stopped syncing", registry=r)
        self.rounds = Counter(f"{PREFIX}_rounds", "Scan rounds of an account (all its streams) this replica completed",
                              registry=r)
        self.analytics_refresh_duration = Gauge(f"{PREFIX}_analytics_refresh_seconds",
                                                "Seconds the last refresh of the analysts' daily overview took",
                                                ["view"], registry=r)
        self.analytics_refresh_days = Gauge(f"{PREFIX}_analytics_refresh_days",
                                            "(account, day)s the last refresh of the analysts' daily overview "
                                            "recomputed: those written since the refresh before", ["view"], registry=r)
        self.analytics_last_refresh = Gauge(f"{PREFIX}_analytics_last_refresh_timestamp_seconds",
                                            "Unix time the analysts' daily overview was last refreshed by this "
                                            "replica", ["view"], registry=r)
        self.ready = Gauge(f"{PREFIX}_ready", "1 while /readyz answers 200", registry=r)

    # ---- the Observer's events --------------------------------------------------------------

    def response(self, api: str, status: int) -> None:
        label = "comms" if api == "comms" else "legacy"
        self.api_responses.labels(label, str(status)).inc()
        if status == 429:
            self.rate_limited.labels(label).inc()

    def retry(self, target: str, cause: str) -> None:
        self.retries.labels(target, cause).inc()

    def account(self, account_sid: str) -> str:
        """The `account` label of `account_sid`'s samples."""
        return account_sid if self.per_account else ALL_ACCOUNTS

    def budget(self, account_sid: str, window: int, in_flight: int, concurrent: int | None) -> None:
        if not self.per_account:
            return
        self.concurrency_window.labels(account_sid).set(window)
        self.requests_in_flight.labels(account_sid).set(in_flight)
        if concurrent is not None:
            self.twilio_concurrent.labels(account_sid).set(concurrent)

    def page_saved(self, account_sid: str, stream: str, counts: Counts) -> None:
        account_sid = self.account(account_sid)
        self.pages.labels(account_sid, stream).inc(counts.pages)
        self.records_fetched.labels(account_sid, stream).inc(counts.seen)
        self.records_outside.labels(account_sid, stream).inc(counts.outside)
        self.rows_written.labels(account_sid, stream, "inserted").inc(counts.inserted)
        self.rows_written.labels(account_sid, stream, "updated").inc(counts.updated)
        self.records_rejected.labels(account_sid, stream).inc(counts.rejected)

    def hydrated(self, account_sid: str, outcome: str) -> None:
        self.hydrations.labels(self.account(account_sid), outcome).inc()

    def zero_account(self, sid: str) -> None:
        """An account's alerting series at 0 from the start: `increase()` misses a counter's first step."""
        sid = self.account(sid)
        for outcome in ("ok", "gone"):
            self.hydrations.labels(sid, outcome)
        for outcome in ("read", "gone"):
            self.media_lists.labels(sid, outcome)
        for stream in ("comms_messages", "comms_operations", "legacy_messages"):
            for counter in (self.pages, self.records_fetched, self.records_rejected, self.records_deleted):
                counter.labels(sid, stream)
            for kind in ("recent", "full"):
                for outcome in ("complete", "failed"):
                    self.scans.labels(sid, stream, kind, outcome)

    def media_listed(self, account_sid: str, outcome: str, items: int, rejected: int) -> None:
        account_sid = self.account(account_sid)
        self.media_lists.labels(account_sid, outcome).inc()
        self.media_items.labels(account_sid, "stored").inc(items)
        self.media_items.labels(account_sid, "rejected").inc(rejected)

    def media_counts(self, account_sid: str, archived: int, owed: int) -> None:
        """One account's media counts; over all accounts (account="*") the service's gauge loop
        sets the archive's totals instead, as one account's would overwrite another's."""
        if self.per_account:
            self.media_archived.labels(account_sid).set(archived)
            self.media_owed.labels(account_sid).set(owed)

    def deleted(self, account_sid: str, stream: str, count: int) -> None:
        self.records_deleted.labels(self.account(account_sid), stream).inc(count)

    def refreshed(self, view: str, seconds: float, days: int) -> None:
        self.analytics_refresh_duration.labels(view).set(seconds)
        self.analytics_refresh_days.labels(view).set(days)
        self.analytics_last_refresh.labels(view).set(time.time())

    def scan_ended(self, account_sid: str, stream: str, kind: str, outcome: str, seconds: float,
                   order: str | None = None) -> None:
        account_sid = self.account(account_sid)
        self.scans.labels(account_sid, stream, kind, outcome).inc()
        if order is not None:
            self.list_order.labels(account_sid, stream, kind, order).inc()
        if outcome == "complete":
            self.scan_duration.labels(account_sid, stream, kind).observe(seconds)
            self.last_success.labels(account_sid, stream, kind).set(time.time())

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _exposed() -> frozenset[str]:
    names = set()
    for family in Metrics().registry.collect():
        if family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        elif family.type == "counter":
            names.add(f"{family.name}_total")
        else:
            names.add(family.name)
    return frozenset(names)


# Every sample name /metrics can show (what alert rules and dashboards may refer to).
EXPOSED = _exposed()
