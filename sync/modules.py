"""Imports every module of the package as installed: `python -m sync.modules`.

The image's build and the installed-wheel tests run it, so a module that a wheel left out, or one
that imports something the install lacks, fails there rather than at a user's first command.
It prints each module it imported; a failure is one line per module and exit status 1.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import sync

# Not modules to import: alembic runs env.py inside its own context, and importing a __main__
# would run its command.
_SCRIPTS = ("sync.migrations.env",)


def names() -> list[str]:
    """sync and every module and package under it, as found where sync is imported from."""
    found = ["sync", *(m.name for m in pkgutil.walk_packages(sync.__path__, "sync."))]
    return sorted(n for n in found if n not in _SCRIPTS and n.rpartition(".")[2] != "__main__")


def main() -> int:
    failures = []
    for name in names():
        try:
            importlib.import_module(name)
        except Exception as exc:  # any failure to import is what this check reports
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
        else:
            print(name)
    for line in failures:
        print(f"cannot import {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
