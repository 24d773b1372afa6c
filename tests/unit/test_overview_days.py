"""The overview's day of a creation time, as the page save computes it in Python: the same date
Postgres's (created AT TIME ZONE 'UTC')::date gives (tests/integration/test_overview_days.py
holds the two together on real rows)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from sync.sql import views

EST = timezone(timedelta(hours=-5))
IST = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(("created", "day"), [
    (None, None),  # a creation time that did not parse: the overview's null day
    (datetime(2026, 11, 3, 23, 59, 59, 999999, tzinfo=timezone.utc), date(2026, 11, 3)),
    (datetime(2026, 11, 4, 0, 0, tzinfo=timezone.utc), date(2026, 11, 4)),
    (datetime(2026, 11, 3, 19, 0, tzinfo=EST), date(2026, 11, 4)),  # midnight UTC, the evening before in New York
    (datetime(2026, 11, 4, 5, 29, tzinfo=IST), date(2026, 11, 3)),
    (datetime(2026, 12, 31, 23, 0, tzinfo=EST), date(2027, 1, 1)),
])
def test_the_day_of_a_creation_time_is_its_utc_date(created, day):
    """The UTC date, whatever offset the API wrote the time with."""
    assert views.day_of(created) == day


def test_a_time_whose_utc_date_python_cannot_hold_is_refused_as_asyncpg_refuses_it():
    """Year 1 at +05:00 is year 0 in UTC: no Python date, and asyncpg cannot send it either."""
    with pytest.raises(OverflowError):
        views.day_of(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))))
