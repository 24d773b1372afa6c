"""The one error tree of twilio-archive.

    SyncError                   anything the user should see as one clear line
    ├── ConfigError             bad settings, flags or dates
    ├── SourceError             the Twilio side
    │   ├── RetryableSourceError    429, 5xx, timeouts, dropped connections, malformed bodies
    │   ├── FatalSourceError        other 4xx (bad credentials, bad request): retrying cannot help
    │   │   ├── ForeignURLError     a page link that points away from the configured base URL
    │   │   └── StalePageTokenError a page token the API no longer accepts (the scan restarts)
    │   └── PaginationLoopError     the API handed back a page token it had already given
    └── StoreError              the database: unreachable, refused, or a migration missing
        ├── StoreUnavailableError   the database went away mid-run (retried, then reported)
        └── ScanMovedError          another process moved a scan's checkpoint (its lease was lost)

A SyncError reaches the user as one line and a non-zero exit (see cli.main); any other
exception is a bug and keeps its traceback. Errors of the libraries at the two edges are
turned into ours there, with `raise ... from exc` so the cause stays in the chain: asyncpg's
at the Postgres edge (sql/edge.py: StoreError, StoreUnavailableError), aiohttp's at the HTTP
transport (transports.AiohttpTransport: RetryableSourceError, or FatalSourceError for a
certificate), and a server's answers in http.TwilioClient.
"""


class SyncError(Exception):
    """Base of every error the user should see as one clear line."""


class ConfigError(SyncError):
    """A setting, flag or date the user gave is missing or malformed."""


class SourceError(SyncError):
    """The Twilio API answered with something we cannot use."""


class RetryableSourceError(SourceError):
    """A failure that may succeed if asked again later (429, 5xx, network, bad body)."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class FatalSourceError(SourceError):
    """A failure that asking again cannot fix (401, 403, 404, 400)."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class ForeignURLError(FatalSourceError):
    """A page link names another host: following it would send our credentials there."""


class StalePageTokenError(FatalSourceError):
    """The API refused a page token it handed out (expired or invalid): the page after it
    cannot be reached any more, so the scan starts again from its window's first page."""


class PaginationLoopError(SourceError):
    """The API returned a page position it had already returned in this scan."""


class StoreError(SyncError):
    """The archive database is unreachable, refused a statement, or lacks the schema."""


class StoreUnavailableError(StoreError):
    """The database stopped answering (restart, failover, network): worth retrying for a while."""


class ScanMovedError(StoreError):
    """A scan's checkpoint was moved or ended by another process: ours is no longer the
    scan's owner (a replica that lost its lease), so it must stop, not fork the checkpoint."""
