"""Log lines: one event per line, `event key=value ...` as text or as one JSON object.

Every log call in the package starts its message with a stable event name (scan.complete,
retry, lease.acquired, ...) followed by key=value pairs, so the JSON form needs no second
set of call sites: it splits that message. Values logged with %r keep their quotes in text
and lose them in JSON."""

from __future__ import annotations

import ast
import json
import logging
import re
import sys
from datetime import datetime, timezone

FORMATS = ("text", "json")
_PAIR = re.compile(r"""(\w+)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)""")


def fields(message: str) -> dict[str, object]:
    """{"event": first word, key: value, ...} of a message in our `event key=value` shape."""
    event, _, rest = message.partition(" ")
    out: dict[str, object] = {"event": event}
    for key, value in _PAIR.findall(rest):
        if value[:1] in "'\"":
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                pass
        else:
            try:
                value = int(value)
            except ValueError:
                try:
                    value = float(value)
                except ValueError:
                    pass
        out.setdefault(key, value)
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        entry.update(fields(message))
        entry["message"] = message
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: int, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log would print a line per probe and scrape.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
