"""The newcomer's path on the embedded default (no DATABASE_URL), as real processes in an
environment without XDG_RUNTIME_DIR (a container, cron, a systemd unit): no warning nobody can
act on, `psql` opens the archive, and after `demo` `status` says where the demo's archive is."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest

from sync import emulator
from tests.cli import cli_env, sync_cli

pytestmark = pytest.mark.timeout(180)

MESSAGES = 150  # per API, all within the 7-day window


def embedded_env(data_dir: str, base_url: str | None = None) -> dict[str, str]:
    env = cli_env(base_url, None, TWILIO_ARCHIVE_DATA_DIR=data_dir)
    env.pop("XDG_RUNTIME_DIR", None)
    return env


@pytest.fixture
def data_dir() -> Iterator[str]:
    # Short on purpose: the embedded server's unix socket lives in it (about 100 bytes at most).
    path = tempfile.mkdtemp(prefix="twa-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_migrate_and_backfill_on_the_embedded_default_print_nothing_on_stderr(data_dir):
    emu = emulator.Emulator(seed=8, comms_messages=MESSAGES, legacy_messages=MESSAGES, legacy_days=7)
    async with emulator.serve(emu) as url:
        for command in (("migrate",), ("backfill",)):
            result = await sync_cli(*command, env=embedded_env(data_dir, url))
            assert result.returncode == 0, result.stderr.decode()
            assert result.stderr.decode() == "", f"{command[0]} wrote to stderr"


async def test_psql_queries_the_embedded_archive_after_a_backfill(data_dir):
    emu = emulator.Emulator(seed=8, comms_messages=MESSAGES, legacy_messages=MESSAGES, legacy_days=7)
    async with emulator.serve(emu) as url:
        for command in (("migrate",), ("backfill",)):
            assert (await sync_cli(*command, env=embedded_env(data_dir, url))).returncode == 0
    result = await sync_cli("psql", "-c", "select count(*) from twilio.messages", env=embedded_env(data_dir))
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split()[2] == str(2 * MESSAGES)  # " count \n-------\n   300\n(1 row)"


async def test_psql_exits_with_psql_s_status(data_dir):
    result = await sync_cli("psql", "-c", "select no_such_column", env=embedded_env(data_dir))
    assert result.returncode == 1
    assert "no_such_column" in result.stderr.decode()


async def test_after_demo_status_says_where_the_demo_s_archive_is(data_dir):
    demo = await sync_cli("demo", "--messages", "100", env=embedded_env(data_dir))
    assert demo.returncode == 0, demo.stderr.decode()[-2000:]
    assert "python -m sync psql --demo" in demo.stdout.decode().split("what next:")[1]
    status = await sync_cli("status", env=embedded_env(data_dir))
    out = status.stdout.decode()
    assert status.returncode == 0, status.stderr.decode()
    assert "the demo's archive: database twilio_archive_demo" in out
    assert "legacy_messages: 100 rows" in out
    psql = await sync_cli("psql", "--demo", "-c", "select count(*) from twilio.legacy_messages",
                          env=embedded_env(data_dir))
    assert psql.returncode == 0 and psql.stdout.decode().split()[2] == "100"
