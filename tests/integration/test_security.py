"""Credentials go only to the configured base URLs, over TLS that is verified, and never
show up in anything the tool prints or logs."""

from __future__ import annotations

import base64
import ssl

import asyncpg
import orjson
import pytest
import trustme
from aiohttp import web

from sync import chains, emulator, errors
from sync.emulator import FaultProfile, create_app
from tests import pg, servers
from tests.cli import cli_env, sync_cli
from tests.conftest import run_backfill, settings_for

LEGACY = ("legacy_messages",)


async def backfill_error(coro) -> BaseException:
    with pytest.raises(BaseException) as info:
        await coro
    return chains.first_error(info.value)


@pytest.mark.parametrize("stream", ["legacy_messages", "comms_messages"])
async def test_a_page_link_to_another_host_is_refused_before_anything_is_sent_there(store, emu, stream):
    """A next_page_uri (legacy) or pagination.next (v1) naming another host stops the scan; that
    host never receives a request, so it never sees the credentials."""
    async with servers.serve(lambda request: servers.json_body(b"{}")) as elsewhere:
        link = f"{elsewhere.base_url}/steal?PageToken=PA1"
        message = emu.add_legacy_message() if stream == "legacy_messages" else emu.add_comms_message()
        if stream == "legacy_messages":
            page = {"messages": [message], "next_page_uri": link, "page": 0}
        else:
            page = {"messages": [message], "pagination": {"next": link, "self": None}}
        async with servers.serve(lambda request: servers.json_body(orjson.dumps(page))) as twilio_like:
            error = await backfill_error(run_backfill(store, settings_for(twilio_like.base_url), streams=(stream,)))
    assert isinstance(error, errors.ForeignURLError) and elsewhere.base_url in str(error)
    assert elsewhere.requests == []
    # The page that carried the link is not saved with it as a checkpoint we could never leave.
    assert (await store.fetch("SELECT pages FROM twilio.scans"))[0]["pages"] == 0


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_emulator(emu, certificate_authority):
    """The emulator behind HTTPS with a certificate for localhost that only our throwaway CA signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    runner = web.AppRunner(create_app(emu), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    yield f"https://localhost:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_a_certificate_nobody_trusts_is_refused_at_once(store, emu, tls_emulator):
    """TLS is verified: a server whose certificate does not chain to a trusted CA gets no request
    (so no credentials), and the run stops with one clear error instead of retrying."""
    error = await backfill_error(run_backfill(store, settings_for(tls_emulator), streams=LEGACY))
    assert isinstance(error, errors.FatalSourceError) and "could not be verified" in str(error)
    assert sum(emu.request_counts.values()) == 0


async def test_a_certificate_of_a_trusted_ca_is_accepted(db_dsn, emu, tls_emulator, certificate_authority, tmp_path):
    """The same server is accepted once its CA is in the trust store (SSL_CERT_FILE): verification
    is real, not a blanket refusal."""
    ca_file = tmp_path / "ca.pem"
    certificate_authority.cert_pem.write_to_path(str(ca_file))
    result = await sync_cli("backfill", "--source", "legacy", env=cli_env(tls_emulator, db_dsn, SSL_CERT_FILE=str(ca_file)))
    assert result.returncode == 0, result.stderr.decode()
    assert emu.request_counts["legacy_list"] >= 1


async def test_secrets_appear_in_no_output_log_or_status(db_dsn, pg_server_dsn):
    """Everything a user sees from backfill -v (with retries logged), a refused token and status:
    neither the auth token, nor the Basic header made from it, nor the database password."""
    token = emulator.DEFAULT_AUTH_TOKEN
    basic = base64.b64encode(f"{emulator.DEFAULT_ACCOUNT_SID}:{token}".encode()).decode()
    password = "pg-pa55-9f3k"
    role = pg.random_name("archiver")
    admin = await asyncpg.connect(db_dsn)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
        dsn = pg.dsn_with_user(db_dsn, role, password)
        emu = emulator.Emulator(seed=2, comms_messages=200, legacy_messages=200, legacy_days=7,
                                faults=FaultProfile(p429=0.2, p503=0.1, drop=0.1, retry_after=0))
        outputs = []
        async with emulator.serve(emu) as url:
            for args, extra in ((["-v", "backfill", "--page-size", "20"], {}), (["status"], {}),
                                (["backfill"], {"TWILIO_AUTH_TOKEN": token[:-1] + "x"})):
                result = await sync_cli(*args, env=cli_env(url, dsn, **extra))
                outputs.append(result.stdout.decode() + result.stderr.decode())
        assert sum(emu.faults.injected.values()) > 0 and "retry" in outputs[0], "no retries were logged"
        everything = "\n".join(outputs)
        for secret in (token, basic, password, token[:-1] + "x"):
            assert secret not in everything
    finally:
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()
