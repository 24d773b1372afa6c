"""Log events: a stable name and typed fields, rendered as text or as one JSON object per line.

Calling convention (every module that logs):

    from sync import logs

    log = logs.get(__name__)
    log.info("scan.complete", account=scan.account_sid, stream=stream, pages=3, seconds=0.25)
    log.warning("retry", what="GET /v1/Messages", attempt=2, delay=1.5, cause=str(exc))
    log.error("scan.failed", account=sid, stream=stream, cause=str(exc), exc_info=True)

- The first argument is the event's name: lower case, dotted, stable (`scan.start`,
  `scan.complete`, `retry`, `lease.acquired`, `deletions.checked`, `hydrate.done`, ...).
  Operators alert and search on it; renaming one is a breaking change.
- Every other keyword is a field, passed as its typed value: ints and floats as numbers,
  datetimes as datetimes (rendered ISO 8601), a `models.Window` whole (rendered as its two ISO
  bounds), strings as they are. Never format a value into the name or into another string.
- Never pass a credential: `config.Secret` renders as stars, but keep secrets out anyway.
- Reserved names (the renderer's own keys): `time`, `level`, `logger`, `event`, `exc_info`.

The event travels inside the standard `logging` record as its message object (the logging
cookbook's "structured logging" recipe), so levels, handlers and pytest's caplog work as
usual; `configure()` renders it at the very end, as `event key=value ...` text or as JSON.
Nothing is ever rendered to text and parsed back.

A record that is not an Event (a library's own, such as alembic's) is kept as its prose, under the
event name `log`."""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import PurePath
from typing import Any, TextIO

FORMATS = ("text", "json")
RESERVED = frozenset({"time", "level", "logger", "event"})

_format = "text"  # what configure() chose; the progress line shows only with text on a terminal


@dataclass(frozen=True, slots=True)
class Event:
    """One log event: its name and its typed fields. `str()` is the text form."""

    name: str
    fields: dict[str, Any]

    def __str__(self) -> str:
        return " ".join([self.name, *(f"{k}={_text(v)}" for k, v in self.fields.items())])


class EventLogger:
    """A `logging.Logger` that takes an event name and typed fields (see the module docstring)."""

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def _log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if not self.logger.isEnabledFor(level):
            return
        exc_info = fields.pop("exc_info", None)
        clash = RESERVED & fields.keys()
        if clash:
            raise TypeError(f"log field names reserved by the renderer: {sorted(clash)}")
        self.logger.log(level, Event(event, fields), exc_info=exc_info, stacklevel=3)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An error with the traceback of the exception being handled."""
        self._log(logging.ERROR, event, {"exc_info": True, **fields})


def get(name: str | logging.Logger | EventLogger) -> EventLogger:
    """The event logger of a module (`logs.get(__name__)`), or one over an existing Logger."""
    if isinstance(name, EventLogger):
        return name
    return EventLogger(name if isinstance(name, logging.Logger) else logging.getLogger(name))


# ---- rendering --------------------------------------------------------------------------------

_BARE = re.compile(r"[\w.:/@+\-]+")


def _plain(value: Any) -> Any:
    """A value as JSON knows it: numbers, strings, booleans, null, lists and objects."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "start") and hasattr(value, "end") and isinstance(getattr(value, "start"), datetime):
        return [value.start.isoformat(), value.end.isoformat()]  # a models.Window
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (Decimal, PurePath)):
        return str(value)
    return str(value)  # an exception, an enum, a Secret (which shows as stars), ...


def _text(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, str):
        return value if _BARE.fullmatch(value) else repr(value)
    if isinstance(value, float):
        return format(value, ".6g")
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return f"[{value[0]}, {value[1]})" if _looks_like_time(value[0]) else json.dumps(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _looks_like_time(text: str) -> bool:
    return len(text) >= 19 and text[4:5] == "-" and text[10:11] == "T"


def event_of(record: logging.LogRecord) -> dict[str, Any]:
    """The record's event as a dict of plain values: what the JSON line carries."""
    entry: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
    }
    if isinstance(record.msg, Event):
        entry["event"] = record.msg.name
        for key, value in record.msg.fields.items():
            entry[key] = _plain(value)
    else:  # a library's own record (alembic, aiohttp): its prose, as it wrote it
        entry["event"] = "log"
        entry["message"] = record.getMessage()
    return entry


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = event_of(record)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: int, fmt: str = "text") -> None:
    """Send every log record to stderr, as text or as JSON lines; nothing else writes there in JSON."""
    global _format
    _format = fmt
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Python's own warnings (a library's DeprecationWarning, ...) become records too, so that
    # in JSON mode they arrive as JSON and not as a bare line between the objects.
    logging.captureWarnings(True)
    # aiohttp's access log would print a line per probe and scrape.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def watched(out: TextIO = sys.stderr) -> bool:
    """Whether a person watches `out` live: a terminal, with text logs (JSON is for collectors)."""
    return _format == "text" and out.isatty()
