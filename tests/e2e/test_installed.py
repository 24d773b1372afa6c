"""What a user installs: the wheel built from this tree, installed (not editable) into a new venv,
run as commands from a directory outside the source tree. The rest of the suite runs against the
source tree through an editable install, which maps the whole sync/ folder and so cannot see a
file the wheel leaves out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from alembic.script import ScriptDirectory

from sync import emulator, migrate
from sync.store import Store
from tests import pg
from tests.archive import assert_archive_equals_emulator
from tests.cli import cli_env

# Building the wheel and installing its dependencies into a new venv takes a minute or two.
pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
# What the wheel is built from, as deploy/Dockerfile copies it into its build stage.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "sync", "migrations")
MESSAGES = 200  # per API, all within the 7-day window


def shipped_sources() -> dict[str, Path]:
    """Every file of the package in the source tree, by the path it must have in the wheel:
    sync/ as is, the top-level migrations/ as sync/migrations/."""
    files = {}
    for top, prefix in (("sync", "sync"), ("migrations", "sync/migrations")):
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".mako"):
                files[f"{prefix}/{path.relative_to(ROOT / top).as_posix()}"] = path
    return files


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    cwd: Path  # an empty directory outside the source tree: nothing there can shadow the package

    def env(self, base_url: str | None = None, dsn: str | None = None, **extra: str) -> dict[str, str]:
        env = cli_env(base_url, dsn, **extra)
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(name, None)
        env["PATH"] = f"{self.python.parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    async def run(self, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
        # Async: the emulator serves from the test's event loop while the command runs.
        return await anyio.run_process(list(args), env=env, cwd=self.cwd, check=False)


def _run(*args: str | Path, cwd: Path) -> None:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    """The wheel of this tree, built as `pip install .` builds it, in a venv of its own."""
    scratch = Path(tempfile.mkdtemp(prefix="twa-wheel-"))
    try:
        source = scratch / "source"
        source.mkdir()
        for name in BUILD_INPUTS:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, source / name)
        _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", scratch / "dist", source,
             cwd=scratch)
        (wheel,) = (scratch / "dist").glob("twilio_archive-*.whl")
        _run(sys.executable, "-m", "venv", scratch / "venv", cwd=scratch)
        python = scratch / "venv" / "bin" / "python"
        _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel, cwd=scratch)
        cwd = scratch / "cwd"
        cwd.mkdir()
        yield Installed(wheel, python, cwd)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_wheel_ships_every_file_of_the_package(installed):
    """Every module, migration and template under sync/ and migrations/ is in the wheel, by name."""
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    missing = sorted(set(shipped_sources()) - names)
    assert not missing, f"the wheel lacks {missing}"


async def test_every_module_imports_from_the_installed_package(installed):
    """`python -m sync.modules` in the venv imports every module, from site-packages, not the tree."""
    env = installed.env()
    where = await installed.run(str(installed.python), "-c", "import sync; print(sync.__file__)", env=env)
    assert where.returncode == 0, where.stderr.decode()
    assert Path(where.stdout.decode().strip()).is_relative_to(installed.python.parents[1]), "imported the source tree"
    result = await installed.run(str(installed.python), "-m", "sync.modules", env=env)
    assert result.returncode == 0, result.stderr.decode()
    expected = {
        path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for path in shipped_sources()
        if path.endswith(".py") and not path.endswith(("__main__.py", "migrations/env.py"))
    }
    assert set(result.stdout.decode().split()) == expected


async def test_installed_commands_migrate_backfill_and_report(installed, pg_server_dsn):
    """The console script migrates a real database to the newest shipped revision; `backfill`
    archives the emulator's window exactly; `status` and `psql -c` report the same counts."""
    name = pg.random_name("installed")
    dsn = await pg.create_database(pg_server_dsn, name)
    try:
        emu = emulator.Emulator(seed=11, comms_messages=MESSAGES, legacy_messages=MESSAGES, legacy_days=7,
                                legacy_order="sent-created")
        async with emulator.serve(emu, host="127.0.0.1", port=0) as url:
            env = installed.env(url, dsn)
            for command in (("twilio-archive", "migrate"), ("twilio-archive", "backfill")):
                result = await installed.run(*command, env=env)
                assert result.returncode == 0, result.stderr.decode()
        store = await Store.connect(dsn)
        try:
            assert await store.fetchval("SELECT version_num FROM alembic_version") == _head_revision()
            counts = await assert_archive_equals_emulator(store, emu)
        finally:
            await store.close()
        status = await installed.run("twilio-archive", "status", env=env)
        assert status.returncode == 0, status.stderr.decode()
        for stream, rows in counts.items():
            assert f"{stream}: {rows:,} rows" in status.stdout.decode()
        psql = await installed.run("twilio-archive", "psql", "-c", "SELECT count(*) FROM twilio.legacy_messages",
                                   env=env)
        assert psql.returncode == 0, psql.stderr.decode()
        assert psql.stdout.decode().split()[2] == str(counts["legacy_messages"])  # " count \n-------\n   200\n"
    finally:
        await pg.drop_database(pg_server_dsn, name)


async def test_installed_demo_completes_without_a_warning(installed):
    """`python -m sync demo` from the venv archives its made-up messages and warns of nothing."""
    data_dir = tempfile.mkdtemp(prefix="twa-")  # short: the embedded server's socket lives in it
    try:
        env = installed.env(TWILIO_ARCHIVE_DATA_DIR=data_dir)
        result = await installed.run(str(installed.python), "-m", "sync", "demo", "--messages", "100", env=env)
        out, err = result.stdout.decode(), result.stderr.decode()
        assert result.returncode == 0, err[-3000:]
        assert "what next:" in out
        assert "WARNING" not in out + err, out + err
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)



def _head_revision() -> str:
    """The newest revision of the tree's migrations/ folder."""
    return ScriptDirectory(str(migrate.script_location())).get_current_head()
