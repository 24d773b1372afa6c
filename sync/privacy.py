"""What of a message's text reaches the archive: all of it, a keyed hash, or nothing.

For teams under privacy rules. The policy applies to the typed `body` column and to `raw`
alike, before anything is written, so the text never touches the database. An empty body
stays empty (it is how Twilio shows a redaction) and a missing one stays missing."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from sync import errors
from sync.config import Secret

MODES = ("keep", "hash", "drop")


@dataclass(frozen=True)
class Bodies:
    mode: str = "keep"
    key: Secret | None = None  # the HMAC key for mode "hash"

    @classmethod
    def from_env(cls, env: Mapping[str, str], mode: str | None = None) -> Bodies:
        mode = mode or env.get("TWILIO_ARCHIVE_BODIES") or "keep"
        if mode not in MODES:
            raise errors.ConfigError(f"TWILIO_ARCHIVE_BODIES / --bodies must be one of {', '.join(MODES)}, got {mode!r}")
        key = env.get("TWILIO_ARCHIVE_BODY_KEY") or None
        if mode == "hash" and not key:
            # An unkeyed hash of a short text (a one-time code, "yes") is reversed by trying
            # every candidate; a key kept out of the database prevents that.
            raise errors.ConfigError("--bodies hash needs TWILIO_ARCHIVE_BODY_KEY, a secret key for the HMAC")
        return cls(mode, Secret(key) if key else None)

    def apply(self, body: object) -> object:
        if self.mode == "keep" or not isinstance(body, str) or body == "":
            return body
        if self.mode == "drop":
            return None
        assert self.key is not None
        digest = hmac.new(self.key.reveal().encode(), body.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return "hmac-sha256:" + digest.hexdigest()


KEEP = Bodies()
