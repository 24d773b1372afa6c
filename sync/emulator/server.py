"""The HTTP face of the emulator: both Twilio APIs on one aiohttp app.

    legacy   GET/POST       /2010-04-01/Accounts/{AccountSid}/Messages.json
             GET/POST/DELETE /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json
             GET            .../Messages/{Sid}/Media.json, GET/DELETE .../Media/{MediaSid}.json (media.py)
    v1       GET  /v1/Messages, /v1/Messages/{messageId}
             GET  /v1/Messages/Operations, /v1/Messages/Operations/{operationId}
    accounts GET/POST /2010-04-01/Accounts.json, /2010-04-01/Accounts/{Sid}.json (accounts.py)
    control  GET/POST /_emulator/faults   the fault injector's stats / {"profile": spec,
             "inject": kind, "times": n, "path_contains": s, "seed": n, "reset": true,
             "hold_after": n, "release": true}

Every API request needs HTTP Basic credentials (Account SID + Auth Token, or API key + secret)
and may then meet latency, the concurrency limit or a fault (faults.py); the control route
needs none and never does. Every authenticated answer, an error's too, carries
`Twilio-Concurrent-Requests`: the credential's requests in flight, this one included.
Handlers only translate: query parsing lives in queries.py, positions in paging.py, state in
data.py. List bodies are assembled from each record's cached JSON bytes, never re-encoded.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web

from . import accounts, errors, faults, media, paging, queries
from .data import Emulator, ListRequest

JSON = "application/json"
FAULTS_PATH = "/_emulator/faults"
Handler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON, charset="utf-8")


def _credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (username, password) if sep else None


@web.middleware
async def _error_bodies(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Render ApiError (and the router's own 404/405) in the dialect of the API addressed."""
    try:
        return await handler(request)
    except errors.ApiError as err:
        failure = err
    except web.HTTPMethodNotAllowed:
        failure = errors.ApiError(405, errors.METHOD_NOT_ALLOWED, "Method not allowed")
    except web.HTTPNotFound:
        failure = errors.not_found(request.path)
    comms = errors.is_comms(request.path)
    response = _json(errors.comms_body(failure) if comms else errors.legacy_body(failure), failure.status)
    if failure.headers:
        response.headers.update(failure.headers)
    if failure.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


class _Api:
    """Route handlers bound to one Emulator."""

    def __init__(self, emu: Emulator):
        self.emu = emu

    def route(self, name: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Count the request under `name`, authenticate it, log it if it lists (`Emulator.list_log`),
        then call the handler with the account through `Faults.serve` (in-flight counts, latency,
        the concurrency limit, then fault selection when the injector is armed)."""

        listing = name.endswith("_list")

        async def wrapped(request: web.Request) -> web.StreamResponse:
            self.emu.request_counts[name] += 1
            creds = _credentials(request)
            if creds is None:
                raise errors.unauthenticated()
            # Whose resources these credentials read: their own, or a subaccount's (accounts.py).
            account = self.emu.directory.acting(*creds, request.match_info.get("account_sid"),
                                                accounts_route=name.startswith("accounts_"))
            if listing:
                query = request.query
                dated = queries.date_sent_filters(query) if name == "legacy_list" else ()
                token = bool(query.get("PageToken") or query.get("pageToken"))
                self.emu.note_list_request(ListRequest(account, name, dated, token, request.raw_path))

            async def answer(in_flight: int) -> web.StreamResponse:
                response = await handler(request, account)
                # Set here, not on the way out: a dropped answer copies these headers.
                response.headers[faults.CONCURRENT_HEADER] = str(in_flight)
                return response

            return await self.emu.faults.serve(request, creds[0], listing, answer)

        return wrapped

    # ------------------------------------------------------------ legacy

    @staticmethod
    def _own(request: web.Request, account: str) -> None:
        """The path's AccountSid must be the caller's: another account's is a 404, as Twilio answers."""
        if request.match_info["account_sid"] != account:
            raise errors.not_found(request.path)

    async def legacy_list(self, request: web.Request, account: str) -> web.Response:
        self._own(request, account)
        q = queries.parse_legacy_list(request.query)
        token = paging.parse_legacy_token(q.token) if q.token else None
        page = self.emu.legacy_page(
            account, to=q.to, from_=q.from_, sent_range=q.sent_range, token=token, size=q.page_size
        )
        if page is None:
            raise errors.bad_request(f"Invalid PageToken: {q.token}", "PageToken")
        blobs, first_sid, last_sid, more = page
        path = f"/2010-04-01/Accounts/{account}/Messages.json"
        size = q.page_size
        start = q.page * size
        head = {
            "first_page_uri": paging.legacy_uri(path, q.echo, size, 0),
            "end": start + max(len(blobs) - 1, 0),
            "previous_page_uri": (
                paging.legacy_uri(path, q.echo, size, q.page - 1, f"PB{first_sid}") if q.page > 0 and blobs else None
            ),
        }
        tail = {
            "uri": paging.legacy_uri(path, q.echo, size, q.page, q.token),
            "page_size": size,
            "start": start,
            "next_page_uri": paging.legacy_uri(path, q.echo, size, q.page + 1, f"PA{last_sid}") if more else None,
            "page": q.page,
        }
        body = b"".join(
            (orjson.dumps(head)[:-1], b',"messages":[', b",".join(blobs), b"],", orjson.dumps(tail)[1:])
        )
        return _json(body)

    async def legacy_fetch(self, request: web.Request, account: str) -> web.Response:
        self._own(request, account)
        blob = self.emu.legacy_record(account, request.match_info["sid"])
        if blob is None:
            raise errors.not_found(request.path)
        return _json(blob)

    async def legacy_update(self, request: web.Request, account: str) -> web.Response:
        """Redact (Body="") or cancel a scheduled message (Status=canceled): the only updates Twilio allows."""
        self._own(request, account)
        sid = request.match_info["sid"]
        blob = self.emu.legacy_record(account, sid)
        if blob is None:
            raise errors.not_found(request.path)
        form = await request.post()
        changes: dict[str, object] = {}
        if "Body" in form:
            if form["Body"] != "":
                raise errors.bad_request("Body can only be updated to an empty string, to redact the message", "Body")
            changes["body"] = ""
        if "Status" in form:
            if form["Status"] != "canceled":
                raise errors.bad_request(f"Invalid Status: {form['Status']}; only 'canceled' is allowed", "Status")
            if orjson.loads(blob).get("status") != "scheduled":
                raise errors.bad_request("Only a scheduled message can be canceled", "Status")
            changes["status"] = "canceled"
        if not changes:
            return _json(blob)
        try:
            self.emu.update_legacy_message(sid, **changes)
        except KeyError:  # deleted meanwhile, by another thread
            raise errors.not_found(request.path) from None
        return _json(self.emu.legacy_record(account, sid) or b"{}")

    async def legacy_delete(self, request: web.Request, account: str) -> web.Response:
        self._own(request, account)
        sid = request.match_info["sid"]
        try:
            if self.emu.legacy_record(account, sid) is None:
                raise KeyError(sid)
            self.emu.delete_legacy_message(sid)
        except KeyError:
            raise errors.not_found(request.path) from None
        return web.Response(status=204)

    async def legacy_create(self, request: web.Request, account: str) -> web.Response:
        self._own(request, account)
        form = await request.post()
        to, from_ = form.get("To"), form.get("From")
        service, body = form.get("MessagingServiceSid"), form.get("Body")
        media = len(form.getall("MediaUrl", []))
        if not isinstance(to, str) or not to:
            raise errors.bad_request("A 'To' phone number is required.", "To", 21604)
        if not (isinstance(from_, str) and from_) and not (isinstance(service, str) and service):
            raise errors.bad_request("A 'From' phone number is required.", "From", 21603)
        if not (isinstance(body, str) and body) and not media:
            raise errors.bad_request("Message body is required.", "Body", 21602)
        body = body if isinstance(body, str) else ""
        if len(body) > 1600:
            raise errors.bad_request("The concatenated message body exceeds the 1600 character limit.", "Body", 21617)
        blob = self.emu.create_legacy_message(
            account, to, from_ if isinstance(from_, str) and from_ else None, body,
            service if isinstance(service, str) and service else None, media,
        )  # fmt: skip
        return _json(blob, 201)

    # ------------------------------------------------------------ fault control

    async def faults_get(self, request: web.Request) -> web.Response:
        return _json(orjson.dumps(self.emu.faults.stats()))

    async def faults_post(self, request: web.Request) -> web.Response:
        try:
            return _json(orjson.dumps(self.emu.faults.command(orjson.loads(await request.read()))))
        except (TypeError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise errors.bad_request(str(exc)) from None

    # ------------------------------------------------------------ v1

    def _v1_list(self, route: str, items: bytes) -> Handler:
        async def handler(request: web.Request, account: str) -> web.Response:
            q = queries.parse_comms_list(request.query, route)
            scope = f"{route}:{account}"
            filters, created_range, size, after = q.filters, q.created_range, q.page_size, None
            if q.token is not None:
                cursor = paging.decode_cursor(self.emu.token_secret, scope, q.token)
                # A token belongs to the query that produced it: filters may be repeated
                # or left out, but not changed.
                if any(cursor.filters.get(k) != v for k, v in q.filters.items()):
                    raise errors.bad_request("pageToken does not belong to this query's filters", "pageToken")
                filters, after = cursor.filters, cursor.after
                created_range = queries.comms_filters(filters, route)
                size = size or cursor.page_size
            size = size or queries.DEFAULT_PAGE_SIZE
            blobs, last, more = self.emu.comms_page(
                account, route, created_range=created_range, filters=filters, after=after, size=size
            )
            secret = self.emu.token_secret
            pagination = {
                "next": paging.encode_cursor(secret, scope, last, filters, size) if more else None,
                "self": paging.encode_cursor(secret, scope, after, filters, size),
            }
            return _json(b"".join((items, b",".join(blobs), b'],"pagination":', orjson.dumps(pagination), b"}")))

        return handler

    async def comms_fetch(self, request: web.Request, account: str) -> web.Response:
        blob = self.emu.comms_record(account, request.match_info["message_id"])
        if blob is None:
            raise errors.not_found(request.path)
        return _json(blob)

    async def operations_fetch(self, request: web.Request, account: str) -> web.Response:
        blob = self.emu.operation_record(account, request.match_info["operation_id"])
        if blob is None:
            raise errors.not_found(request.path)
        return _json(blob)


def create_app(emu: Emulator) -> web.Application:
    """The aiohttp application serving both APIs from `emu`."""
    api = _Api(emu)
    app = web.Application(middlewares=[_error_bodies])
    legacy = "/2010-04-01/Accounts/{account_sid}/Messages"
    r = app.router
    r.add_get(legacy + ".json", api.route("legacy_list", api.legacy_list), allow_head=False)
    r.add_post(legacy + ".json", api.route("legacy_create", api.legacy_create))
    r.add_get(legacy + "/{sid}.json", api.route("legacy_fetch", api.legacy_fetch), allow_head=False)
    r.add_post(legacy + "/{sid}.json", api.route("legacy_update", api.legacy_update))
    r.add_delete(legacy + "/{sid}.json", api.route("legacy_delete", api.legacy_delete))
    for method, path, name, handler in media.Routes(emu).table():
        r.add_route(method, legacy + path, api.route(name, handler))
    # Operations before {messageId}: the router takes the first match.
    r.add_get("/v1/Messages/Operations", api.route("operations_list", api._v1_list("operations", b'{"operations":[')), allow_head=False)
    r.add_get("/v1/Messages/Operations/{operation_id}", api.route("operations_fetch", api.operations_fetch), allow_head=False)
    r.add_get("/v1/Messages", api.route("comms_list", api._v1_list("messages", b'{"messages":[')), allow_head=False)
    r.add_get("/v1/Messages/{message_id}", api.route("comms_fetch", api.comms_fetch), allow_head=False)
    accounts.add_routes(app, api, emu)
    # Fault control for out-of-process use: no credentials, never faulted, never counted.
    r.add_get(FAULTS_PATH, api.faults_get, allow_head=False)
    r.add_post(FAULTS_PATH, api.faults_post)
    return app


@contextlib.asynccontextmanager
async def serve(emu: Emulator, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Run the emulator on host:port (0 = any free port); yield its base URL, e.g. http://127.0.0.1:PORT."""
    runner = web.AppRunner(create_app(emu), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{bound_port}"
    finally:
        emu.faults.release()  # a request held at the gate would keep the shutdown waiting for it
        await runner.cleanup()
