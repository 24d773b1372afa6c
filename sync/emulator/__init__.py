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
"""

from .data import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_API_KEY_SECRET,
    DEFAULT_API_KEY_SID,
    DEFAULT_AUTH_TOKEN,
    Account,
    Emulator,
)
from .faults import FaultProfile, Faults
from .server import create_app, serve

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_API_KEY_SECRET",
    "DEFAULT_API_KEY_SID",
    "DEFAULT_AUTH_TOKEN",
    "Account",
    "Emulator",
    "FaultProfile",
    "Faults",
    "create_app",
    "serve",
]
