"""Pure conversions from Twilio's wire formats to Python values for typed columns.

Every function returns None for a missing value and raises ValueError for one it cannot
read; callers record the problem and keep the raw payload, so nothing is lost."""

from __future__ import annotations

import email.utils
import functools
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
NUL = "\x00"
# U+FFFD is Unicode's own mark for "a character that could not be represented".
NUL_REPLACEMENT = "\ufffd"


# Pages repeat the same second many times (date_sent == date_updated, bursts of sends);
# a small cache turns most parses into a dict lookup.
@functools.lru_cache(maxsize=8192)
def rfc2822(value: str) -> datetime:
    """`Fri, 24 May 2019 17:44:46 +0000` (the legacy API's dates) as an aware datetime."""
    # Fast path for the exact shape Twilio sends; anything else goes to the stdlib parser.
    if len(value) == 31 and value[3:5] == ", " and value[25:] == " +0000" and value[5:7].isdigit():
        month = _MONTHS.get(value[8:11])
        if month is not None and value[19] == ":" and value[22] == ":":
            try:
                return datetime(
                    int(value[12:16]), month, int(value[5:7]),
                    int(value[17:19]), int(value[20:22]), int(value[23:25]), tzinfo=timezone.utc,
                )
            except ValueError:
                pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(f"not an RFC 2822 date: {value!r}") from exc
    if parsed is None:
        raise ValueError(f"not an RFC 2822 date: {value!r}")
    # RFC 2822 "-0000" means UTC with unknown origin; the stdlib returns it naive.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@functools.lru_cache(maxsize=8192)
def rfc3339(value: str) -> datetime:
    """`2025-06-18T12:00:00Z` (the v1 API's dates) as an aware datetime."""
    if not isinstance(value, str) or len(value) < 20 or value[10] not in "Tt":
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"RFC 3339 timestamp without an offset: {value!r}")
    return parsed


def optional(parse, value: Any):
    """None stays None; anything else must parse."""
    return None if value is None else parse(value)


def decimal(value: Any) -> Decimal:
    """A price: Twilio sends signed decimal strings ("-0.00750"); numbers are accepted too."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"not a decimal: {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite decimal: {value!r}")
    return result


_INT4 = 2**31


def integer(value: Any) -> int:
    """A count or an error code: the legacy API sends counts as strings ("1")."""
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        result = int(value)
    else:
        raise ValueError(f"not an integer: {value!r}")
    if not -_INT4 <= result < _INT4:
        raise ValueError(f"integer out of range: {value!r}")
    return result


def text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not a string: {value!r}")
    return value


def without_nul(value: Any) -> tuple[Any, int]:
    """The value with every NUL in its strings (keys included) replaced, and how many there were.

    Postgres can store NUL neither in text nor in jsonb."""
    if isinstance(value, str):
        count = value.count(NUL)
        return (value.replace(NUL, NUL_REPLACEMENT), count) if count else (value, 0)
    if isinstance(value, dict):
        total, out = 0, {}
        for k, v in value.items():
            k2, n1 = without_nul(k)
            v2, n2 = without_nul(v)
            out[k2] = v2
            total += n1 + n2
        return out, total
    if isinstance(value, list):
        total, items = 0, []
        for v in value:
            v2, n = without_nul(v)
            items.append(v2)
            total += n
        return items, total
    return value, 0
