"""Which streams this replica holds: the leases of twilio.leases, taken, kept and given up.

Per (account, stream) one lease (`store.leases`), so replicas never scan the same stream at
once and a survivor takes over a dead replica's streams when their leases lapse (LEASE_TTL).
`Leases` asks for each stream's lease, renews the ones it holds every third of the TTL,
forgets one another replica has taken, and releases them all when the service stops. It keeps
a `StreamHealth` per stream it holds (what /readyz reports) and the `lease_held` gauge. It may
not scan or decide what a turn does: that is the service's and schedule.py's."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from sync import errors, logs
from sync.metrics import Metrics
from sync.schedule import StreamHealth
from sync.store import Store

log = logs.get("sync.service")  # the name it had before the split: log filters name it

LEASE_TTL = 30.0  # a dead replica's streams are taken over at most this long after it died

Key = tuple[str, str]  # (account sid, stream)


@dataclass
class Leases:
    store: Store
    metrics: Metrics
    holder: str  # this replica's name in twilio.leases
    wanted: int  # how many (account, stream)s this replica asks for
    ttl: float = LEASE_TTL  # renewed every third of it
    health: dict[Key, StreamHealth] = field(default_factory=dict)  # the streams held now
    asked: set[Key] = field(default_factory=set)  # streams whose lease we have asked for

    @property
    def all_asked(self) -> bool:
        return len(self.asked) >= self.wanted

    async def acquire(self, key: Key) -> bool:
        """Ask for a stream's lease once; a database away is a no, asked again later."""
        try:
            got = await self.store.leases.acquire(*key, self.holder, self.ttl)
        except errors.StoreError as exc:
            log.warning("lease.acquire_failed", account=key[0], stream=key[1], cause=str(exc))
            got = False
        if got:
            self.health[key] = StreamHealth()
            self.metrics.lease_held.labels(*key).set(1)
            log.info("lease.acquired", account=key[0], stream=key[1], holder=self.holder)
        self.asked.add(key)
        return got

    async def renew(self) -> None:
        """Keep our leases alive; forget the ones another replica has taken (after we were
        away longer than the TTL): its scans fence ours off (ScanMovedError)."""
        while True:
            await anyio.sleep(self.ttl / 3)
            try:
                held = await self.store.leases.renew(self.holder, self.ttl)
            except errors.StoreError as exc:
                log.warning("lease.renew_failed", cause=str(exc))
                continue
            for key in [k for k in self.health if k not in held]:
                self.lost(key)

    def lost(self, key: Key) -> None:
        if self.health.pop(key, None) is not None:
            self.metrics.lease_held.labels(*key).set(0)
            log.warning("lease.lost", account=key[0], stream=key[1])

    async def release(self) -> None:
        """Give every lease up, even while the service is being cancelled, for at most 2 s: a
        replica that cannot reach the database leaves them to lapse."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(2):
            try:
                await self.store.leases.release(self.holder)
            except errors.StoreError as exc:
                log.warning("service.leases_not_released", cause=str(exc))
