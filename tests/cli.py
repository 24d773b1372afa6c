"""Running the CLI as a user does: a real process with its configuration in the environment."""

from __future__ import annotations

import os
import sys

import anyio

from sync import emulator


def cli_env(base_url: str | None, dsn: str | None, **extra: str) -> dict[str, str]:
    """This process's environment without our settings, then the emulator's credentials and URLs
    (when `base_url`), DATABASE_URL (when `dsn`), then `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DATABASE_URL", "SSL_CERT"))}
    if dsn:
        env["DATABASE_URL"] = dsn
    if base_url:
        env.update(
            TWILIO_ACCOUNT_SID=emulator.DEFAULT_ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=emulator.DEFAULT_AUTH_TOKEN,
            TWILIO_API_BASE_URL=base_url,
            TWILIO_COMMS_BASE_URL=base_url,
        )
    env.update(extra)
    return env


async def sync_cli(*args: str, env: dict[str, str]):
    # Async on purpose: the emulator serves from the test's event loop while the CLI runs.
    return await anyio.run_process([sys.executable, "-m", "sync", *args], env=env, check=False)
