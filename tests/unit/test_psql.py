"""How psql is pointed at the archive: the password travels in its environment, not in argv."""

from __future__ import annotations

from sync import psql


def test_psql_gets_the_password_through_its_environment_only():
    target, env = psql.invocation("postgresql://archiver:p%40ss@db.example.com:5432/archive?sslmode=require",
                                  {"PATH": "/bin", "PGPASSWORD": "stale"})
    assert target == "postgresql://archiver@db.example.com:5432/archive?sslmode=require"
    assert env == {"PATH": "/bin", "PGPASSWORD": "p@ss"}


def test_an_embedded_dsn_without_a_password_sets_none():
    target, env = psql.invocation("postgresql://postgres:@/twilio_archive?host=/tmp/twa-x/pgdata", {})
    assert target == "postgresql://postgres@/twilio_archive?host=/tmp/twa-x/pgdata"
    assert "PGPASSWORD" not in env
