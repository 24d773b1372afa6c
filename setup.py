"""The wheel's packages, found rather than listed; everything else is in pyproject.toml.

pyproject.toml's packages.find walks one tree under its own names, but the alembic revisions
live in the top-level migrations/ folder and ship as sync.migrations (package-dir in
pyproject.toml maps that name onto the folder). So both trees are searched here, and a new
subpackage of either can never be left out of what users install again.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["sync", "sync.*"]),
        *(f"sync.{name}" for name in find_packages(include=["migrations", "migrations.*"])),
    ]
)
