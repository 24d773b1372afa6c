"""A faithful in-process fake of Twilio's two message-history APIs, for demos, tests and benchmarks.

It speaks the legacy 2010-04-01 Messages API and the v1 Comms Messages / Operations API on
one port, with HTTP Basic auth, Twilio's paging and error bodies, and a deterministic data
set full of the awkward records real accounts hold. Tests change records through the
Python hooks on `Emulator` or through the real endpoints, even while a scan is running.

    emu = Emulator(seed=0, comms_messages=500, legacy_messages=500)
    async with serve(emu) as base_url:
        ...  # point a client at base_url with DEFAULT_ACCOUNT_SID / DEFAULT_AUTH_TOKEN

`Emulator(faults=FaultProfile.parse("503=0.05,retry-after=1"))` makes it misbehave as the real
APIs do (429/500/503, slow, dropped and malformed answers, stale tokens, rate limits); see faults.py.
`FaultProfile(latency=0.05, concurrency_limit=3)` (spec "latency-ms=50,concurrency-limit=3") answers
every request after 50 ms and refuses a credential's requests beyond 3 in flight with 429 (20429);
`emu.faults.peak_in_flight` says how many a client had in flight at once.
`Emulator(legacy_order="sent-created", legacy_history=200_000)` serves the legacy list in another of
the plausible orders (`LEGACY_ORDERS`, see orders.py) over a year of history; `emu.list_requests(...)`
and `emu.list_log` tell what list requests clients made, DateSent-filtered or not.
`Emulator(mms_share=0.1)` gives a tenth of the legacy messages 1 to 10 media items, served by their
Media lists (media.py); `emu.media.items(message)` lists them, `emu.media.delete(sid)` deletes one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .orders import DEFAULT_LEGACY_ORDER, LEGACY_ORDERS

# The rest loads on first use (PEP 562): the CLI reads LEGACY_ORDERS for every command's
# --help, and the data set's tables and aiohttp.web cost ~0.1 s it should not pay for that.
_LAZY = {
    "DEFAULT_ACCOUNT_SID": "data", "DEFAULT_API_KEY_SECRET": "data", "DEFAULT_API_KEY_SID": "data",
    "DEFAULT_AUTH_TOKEN": "data", "Account": "data", "Emulator": "data", "ListRequest": "data",
    "FaultProfile": "faults", "Faults": "faults", "create_app": "server", "serve": "server",
}  # fmt: skip

if TYPE_CHECKING:
    from .data import (
        DEFAULT_ACCOUNT_SID,
        DEFAULT_API_KEY_SECRET,
        DEFAULT_API_KEY_SID,
        DEFAULT_AUTH_TOKEN,
        Account,
        Emulator,
        ListRequest,
    )
    from .faults import FaultProfile, Faults
    from .server import create_app, serve


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_API_KEY_SECRET",
    "DEFAULT_API_KEY_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_LEGACY_ORDER",
    "LEGACY_ORDERS",
    "Account",
    "Emulator",
    "FaultProfile",
    "Faults",
    "ListRequest",
    "create_app",
    "serve",
]
