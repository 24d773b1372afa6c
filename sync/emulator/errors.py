"""Error bodies of the two Twilio APIs, raised as one exception type.

Handlers raise `ApiError(status, code, message, context)`; the server's middleware renders it
in the dialect of the API the request was for:

    legacy 2010-04-01:  {"code": 20404, "message": "...", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}
    v1 Comms (TwilioErrors):  {"errors": [{"code": 20404, "message": "...", "info_url": "https://www.twilio.com/docs/api/errors/20404", "context": null}]}

`context` is the JSON path or parameter name at fault; only the v1 shape carries it.
`headers` are sent with the body (the Retry-After of a 429 or 503).
"""

from __future__ import annotations

import orjson

INVALID_PARAMETER = 20001  # also Twilio's "PageToken is required for paging."
AUTHENTICATE = 20003
NOT_FOUND = 20404
PAGE_SIZE_TOO_LARGE = 20007
METHOD_NOT_ALLOWED = 20004
TOO_MANY_REQUESTS = 20429
INTERNAL_ERROR = 20500
SERVICE_UNAVAILABLE = 20503


class ApiError(Exception):
    """A request Twilio would refuse: carries the HTTP status and the Twilio error code."""

    def __init__(
        self, status: int, code: int, message: str, context: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.context = context
        self.headers = headers


def is_comms(path: str) -> bool:
    """Whether a request path addresses the v1 Comms API (else the legacy dialect applies)."""
    return path.startswith("/v1/") or path == "/v1"


def bad_request(message: str, context: str | None = None, code: int = INVALID_PARAMETER) -> ApiError:
    """400 for a parameter Twilio would reject."""
    return ApiError(400, code, message, context)


def not_found(path: str) -> ApiError:
    """404 worded as the legacy API words it (the v1 body reuses the code)."""
    return ApiError(404, NOT_FOUND, f"The requested resource {path} was not found")


def unauthenticated() -> ApiError:
    """401: no credentials, or none that match an account or API key."""
    return ApiError(401, AUTHENTICATE, "Authenticate")


def legacy_body(err: ApiError) -> bytes:
    """The 2010-04-01 API's error body (`x.twilio_error` in the official spec)."""
    return orjson.dumps(
        {
            "code": err.code,
            "message": err.message,
            "more_info": f"https://www.twilio.com/docs/errors/{err.code}",
            "status": err.status,
        }
    )


def comms_body(err: ApiError) -> bytes:
    """The v1 Comms API's TwilioErrors body."""
    return orjson.dumps(
        {
            "errors": [
                {
                    "code": err.code,
                    "message": err.message,
                    "info_url": f"https://www.twilio.com/docs/api/errors/{err.code}",
                    "context": err.context,
                }
            ]
        }
    )
