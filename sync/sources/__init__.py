"""One module per Twilio list: request building and record parsing, pure, no sessions."""

from sync.sources import comms, legacy
from sync.sources.base import Source, owned, parse_page, rows

BY_STREAM: dict[str, Source] = {s.stream: s for s in (comms.MESSAGES, comms.OPERATIONS, legacy.SOURCE)}

__all__ = ["BY_STREAM", "Source", "owned", "parse_page", "rows"]
