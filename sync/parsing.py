"""Pure conversions from Twilio's wire formats to Python values for typed columns.

Every function returns None for a missing value and raises ValueError for one it cannot
read; callers record the problem and keep the raw payload, so nothing is lost."""

from __future__ import annotations

import email.utils
import functools
import re
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}
NUL = "\x00"
# U+FFFD is Unicode's own mark for "a character that could not be represented".
REPLACEMENT = "\ufffd"


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


_EPOCH_DAY = date(1970, 1, 1).toordinal()


@functools.lru_cache(maxsize=1024)
def _midnight(day: str) -> int | None:
    """`24 May 2019` as the epoch second its UTC midnight is; None for anything else. A page's
    records share a few days, so this is nearly always a lookup."""
    month = _MONTHS.get(day[3:6])
    if month is None or day[2] != " " or day[6] != " " or not day[:2].isdigit() or not day[7:].isdigit():
        return None
    try:
        return (date(int(day[7:]), month, int(day[:2])).toordinal() - _EPOCH_DAY) * 86_400
    except ValueError:
        return None


def rfc2822_seconds(value: str) -> float:
    """rfc2822(value).timestamp(), the same float, without a datetime for the shape Twilio sends:
    a page's times (the scan plan's evidence, the window) need no more, and its dates are nearly
    all distinct, so the datetime cache of rfc2822 would only miss."""
    if len(value) == 31 and value[3:5] == ", " and value[25:] == " +0000" and value[19] == ":" and value[22] == ":":
        midnight = _midnight(value[5:16])
        h, m, s = value[17:19], value[20:22], value[23:25]
        if midnight is not None and h.isdigit() and m.isdigit() and s.isdigit():
            h, m, s = int(h), int(m), int(s)
            if h < 24 and m < 60 and s < 60:
                return float(midnight + h * 3600 + m * 60 + s)
    return rfc2822(value).timestamp()  # any other shape, and every error, as rfc2822 has them


def seconds(convert: Callable[[Any], datetime]) -> Callable[[Any], float]:
    """value -> convert(value).timestamp() for a date converter of this module, by its fastest way."""
    if convert is rfc2822:
        return rfc2822_seconds
    return lambda value: convert(value).timestamp()


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
    if value.__class__ is str and value.isascii() and value.isdigit():
        # What the legacy API sends, two columns a record: checked first, and at once.
        result = int(value)
        if result < _INT4:
            return result
        raise ValueError(f"integer out of range: {value!r}")
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


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: Any) -> tuple[Any, int, int]:
    """The value with every character Postgres cannot store replaced by U+FFFD, in strings
    and keys alike: NUL (neither text nor jsonb takes it) and lone UTF-16 surrogates (which
    JSON may escape but UTF-8 cannot encode). Returns (value, NULs, surrogates)."""
    if isinstance(value, str):
        if not _UNSTORABLE.search(value):
            return value, 0, 0
        nuls = value.count(NUL)
        return _UNSTORABLE.sub(REPLACEMENT, value), nuls, len(_UNSTORABLE.findall(value)) - nuls
    if isinstance(value, dict):
        nuls = surrogates = 0
        out = {}
        for k, v in value.items():
            k, n1, s1 = storable(k)
            out[k], n2, s2 = storable(v)
            nuls, surrogates = nuls + n1 + n2, surrogates + s1 + s2
        return out, nuls, surrogates
    if isinstance(value, list):
        nuls = surrogates = 0
        items = []
        for v in value:
            v, n, sg = storable(v)
            items.append(v)
            nuls, surrogates = nuls + n, surrogates + sg
        return items, nuls, surrogates
    return value, 0, 0
