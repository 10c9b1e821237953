"""Settings: every option, resolved once, from flags > env (HIVE_*) > config.toml > defaults.

This is the only module that reads ``os.environ`` or the home directory.
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
import stat
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import PydanticBaseSettingsSource, TomlConfigSettingsSource

from hive_server.core.eventlog import Durability
from hive_server.core.redis_url import check_url

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_HOST_RE = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")  # a DNS name, IPv4 or IPv6


class Settings(BaseModel):
    """Every option of the server. Frozen: build a new one to change anything."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    home: Path = Path("~/.hive")
    agents_dir: Path = Path("agents")
    queens_dir: Path = Path("queens")
    durability: Durability = Durability.BATCH
    no_auth: bool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False  # a line per request; off: only slow ones and 5xx (4xx at debug)
    slow_request_seconds: float = Field(default=1.0, gt=0)  # a request this slow is logged
    token: str = Field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    token_file: Path | None = None  # where ``token`` was read from (or created), if anywhere
    model: str | None = None
    anthropic_api_key: str | None = Field(default=None, repr=False)
    anthropic_base_url: str | None = None
    webhook_host: str | None = None
    webhook_port: int | None = Field(default=None, ge=0, le=65535)
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    ui_dir: Path | None = None
    max_body_bytes: int = 1024 * 1024
    max_message_chars: int = 100_000
    sse_queue_size: int = 2048
    sse_keepalive_seconds: float = 15.0
    queen_inbox_size: int = 256
    stale_turn_seconds: float = Field(default=300.0, gt=0)  # a silent queen turn is failed
    resume_concurrency: int = Field(default=16, ge=1, le=256)  # sessions resumed at once at start
    # spend limits (services/budget/budgets.py): each new session's own limit, and every session
    # together per UTC day; None is no limit
    session_budget_tokens: int | None = Field(default=None, ge=1)
    session_budget_usd: float | None = Field(default=None, gt=0)
    daily_budget_tokens: int | None = Field(default=None, ge=1)
    daily_budget_usd: float | None = Field(default=None, gt=0)
    shutdown_grace_seconds: float = Field(default=10.0, gt=0)  # SIGTERM to exit, at most
    idle_timeout_seconds: float = Field(default=60.0, gt=0)  # idle keep-alive, slow headers
    sse_send_timeout_seconds: float = Field(default=30.0, gt=0)  # a stalled SSE reader
    watch_folders: bool = True  # reload agents/ and queens/ while running (tests turn it off)
    # a Redis URL: checked at start (reachable, persisting as ``durability`` needs), then the
    # sessions are kept there, shared by every node on it (README "Running several nodes")
    redis: str | None = Field(default=None, repr=False)  # repr: it may hold a password
    # with ``redis``: this node's id (default ``<host>-<pid>``) and how long a session's lease
    # outlives its owner's last renewal before another node may take the session over
    node_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    lease_seconds: float = Field(default=10.0, ge=1.0, le=300.0)
    env: Mapping[str, str] = Field(default_factory=dict, repr=False)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("home", "agents_dir", "queens_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(normalise_origin(origin) for origin in value)

    @field_validator("redis")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)

    @field_validator("ui_dir")
    @classmethod
    def _ui_dir(cls, value: Path | None) -> Path | None:
        """An existing folder holding ``index.html`` (a built single-page app), resolved."""
        if value is None:
            return None
        folder = value.expanduser().resolve()
        if not folder.is_dir():
            raise ValueError(f"{value} is not a directory")
        if not (folder / "index.html").is_file():
            raise ValueError(f"{value} has no index.html (build the UI first)")
        return folder

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    @property
    def webhooks_loopback(self) -> bool:
        """Whether /hooks/* is reachable only from this machine."""
        return self.is_loopback and (self.webhook_host is None
                                     or self.webhook_host in LOOPBACK_HOSTS)

    @property
    def auth_required(self) -> bool:
        return not self.no_auth

    def secret(self, name: str) -> str | None:
        """A secret from the environment captured at start (webhook secrets)."""
        return self.env.get(name)


def normalise_origin(value: str) -> str:
    """``scheme://host[:port]`` as a browser sends it in ``Origin`` (lower case, no default
    port, IPv6 in brackets); ValueError for anything else (a path, a query, user info)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid origin {value!r}") from None
    host = parts.hostname or ""
    if (parts.scheme not in ("http", "https") or not _HOST_RE.fullmatch(host)
            or parts.username is not None
            or parts.path not in ("", "/") or parts.query or parts.fragment):
        raise ValueError(f"invalid origin {value!r}: expected scheme://host[:port]")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[parts.scheme]:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}"


ENV_NAMES = {field: f"HIVE_{field.upper()}" for field in (
    "host", "port", "home", "agents_dir", "queens_dir", "durability", "no_auth", "log_level",
    "model", "webhook_host", "webhook_port", "token", "token_file", "ui_dir", "allowed_origins",
    "shutdown_grace_seconds", "access_log", "slow_request_seconds", "stale_turn_seconds",
    "resume_concurrency", "session_budget_tokens", "session_budget_usd", "daily_budget_tokens",
    "daily_budget_usd", "watch_folders", "node_id", "lease_seconds")} | {
    "redis": "HIVE_REDIS_URL"}
FLAG_NAMES = {field: "--" + field.replace("_", "-") for field in Settings.model_fields} | {
    "allowed_origins": "--allow-origin", "shutdown_grace_seconds": "--shutdown-grace",
    "watch_folders": "--no-watch-folders"}
# Options config.toml may set: ``home`` is where the file was found (it cannot move it), the
# Anthropic settings come from their own environment variables only.
CONFIG_KEYS = frozenset(Settings.model_fields) - {
    "home", "env", "anthropic_api_key", "anthropic_base_url"}
DEFAULT_HOME = "~/.hive"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


class SettingsError(ValueError):
    """A setting that cannot be used, in one line naming where it came from (the config file,
    the environment variable or the flag), the key and what was expected."""


def resolve_home(flag: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """``--home`` > ``HIVE_HOME`` > ``~/.hive``, absolute."""
    env = os.environ if environ is None else environ
    return Path(flag or env.get("HIVE_HOME") or DEFAULT_HOME).expanduser().resolve()


def load_settings(flags: Mapping[str, Any], environ: Mapping[str, str] | None = None,
                  warn: Callable[[str], None] | None = None) -> Settings:
    """Merge CLI flags (None = not given), HIVE_* env vars, config.toml and defaults.

    Each source's values (``source()``) are merged in ``sources`` order, first wins, as in
    pydantic-settings' ``settings_customise_sources``; the merge is ours so ``Settings`` stays
    a plain model (no environment read in tests) and each value's source is known for the
    error message. ``warn`` receives one line per config key that is not an option (ignored).
    Raises ``SettingsError`` for a value that cannot be used.
    """
    env = dict(os.environ if environ is None else environ)
    config = resolve_home(flags.get("home"), env) / "config.toml"
    given = {k: v for k, v in flags.items() if v is not None and k in Settings.model_fields}
    sources = [(given.copy, FLAG_NAMES.__getitem__),  # the flags: the init source
               (_Environment(env), ENV_NAMES.__getitem__),
               (_ConfigFile(config, warn), lambda _: str(config))]
    layers = [(source(), where) for source, where in reversed(sources)]  # lowest first
    values = {field: value for layer, _ in layers for field, value in layer.items()}
    origin = {field: where(field) for layer, where in layers for field in layer}
    _token_from_file(values, origin)
    values |= {"anthropic_api_key": env.get("ANTHROPIC_API_KEY") or None,
               "anthropic_base_url": env.get("ANTHROPIC_BASE_URL") or None, "env": env}
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError("; ".join(_describe(err, origin) for err in exc.errors())) from None


class _Environment(PydanticBaseSettingsSource):
    """``ENV_NAMES`` read from ``environ`` (EnvSettingsSource reads only os.environ); empty
    ones are unset. ``HIVE_NO_AUTH`` (likewise ``HIVE_ACCESS_LOG``, ``HIVE_WATCH_FOLDERS``) is
    true for 1, true, yes or on (any case) and false otherwise; ``HIVE_ALLOWED_ORIGINS`` is
    comma-separated."""

    def __init__(self, environ: Mapping[str, str]):
        super().__init__(Settings)
        self._environ = environ

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        name = ENV_NAMES[field_name]  # exactly this name, in upper case
        return self._environ.get(name) or None, name, False

    def __call__(self) -> dict[str, Any]:
        return {name: self.prepare_field_value(name, None, value, False) for name in ENV_NAMES
                if (value := self.get_field_value(None, name)[0]) is not None}

    def prepare_field_value(self, field_name: str, field: Any, value: Any,
                            value_is_complex: bool) -> Any:
        if field_name in ("no_auth", "access_log", "watch_folders"):
            return value.lower() in TRUE_WORDS
        if field_name == "allowed_origins":
            return [part for part in value.split(",") if part.strip()]
        return value


class _ConfigFile(TomlConfigSettingsSource):
    """Optional defaults from ``$HIVE_HOME/config.toml`` (keys = option names, ``-`` or ``_``,
    optionally under ``[server]``); unknown keys are reported to ``warn`` and ignored."""

    def __init__(self, path: Path, warn: Callable[[str], None] | None):
        if path.exists() and not path.is_file():  # the library would skip it silently
            raise SettingsError(f"{path}: not a file")
        self._path, self._warn = path, warn
        try:
            super().__init__(BaseModel, toml_file=path)  # no fields: the table as written
        except (OSError, ValueError) as exc:  # TOMLDecodeError, UnicodeDecodeError
            raise SettingsError(f"{path}: {exc}") from None

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        section = data.get("server", data)
        if not isinstance(section, dict):
            raise SettingsError(f"{self._path}: [server] must be a table")
        known = {k: k.replace("-", "_") for k in section if k.replace("-", "_") in CONFIG_KEYS}
        unknown = [k for k in section if k not in known]
        unknown += [f"{k} (outside [server])" for k in data
                    if section is not data and k != "server"]
        if unknown and self._warn is not None:
            self._warn(f"{self._path}: unknown keys ignored: "
                       f"{', '.join(_suggest(k) for k in unknown)}")
        return {name: section[k] for k, name in known.items()}


def _suggest(key: str) -> str:
    if key.replace("-", "_") == "home":
        return "home (the file lives in HIVE_HOME: set --home or HIVE_HOME instead)"
    close = difflib.get_close_matches(key.replace("-", "_"), sorted(CONFIG_KEYS), n=1)
    return f"{key} (did you mean {close[0]}?)" if close else key


def _token_from_file(values: dict[str, Any], sources: dict[str, str]) -> None:
    """``token_file``: the token is the file's one line; a missing file is created (0600, its
    folder 0700) with a new random token, so every later start uses the same one."""
    raw = values.get("token_file")
    if raw is None:
        return
    where = sources["token_file"]
    if "token" in values:
        raise SettingsError(f"{where}: token_file cannot be combined with token "
                            f"(token set by {sources['token']}): give one of them")
    path = values["token_file"] = Path(raw).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        values["token"] = _read_token(path, where)
        return
    except OSError as exc:
        raise SettingsError(f"{where}: token_file {path}: {exc.strerror}") from None
    values["token"] = secrets.token_urlsafe(24)
    with os.fdopen(fd, "w") as fh:
        fh.write(values["token"] + "\n")


def _read_token(path: Path, where: str) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{where}: token_file {path}: {exc}") from None
    if mode & 0o077:
        raise SettingsError(f"{where}: token_file {path} can be read by other users "
                            f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}")
    if not text or any(ch.isspace() or not ch.isprintable() for ch in text):
        raise SettingsError(f"{where}: token_file {path} must hold one token: one line of "
                            "printable characters without spaces")
    return text


def _describe(err: Any, sources: Mapping[str, str]) -> str:
    """One pydantic error as ``<source>: <key> = <value>: <what was expected>``."""
    key = str(err["loc"][0]) if err["loc"] else "settings"
    where = sources.get(key, "default")
    if key not in Settings.model_fields:
        return f"{where}: {key}: {err['msg']}"
    shown = repr(err["input"])
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    if not Settings.model_fields[key].repr:  # a secret, or a URL that may hold a password
        shown = "(not shown)"
    if err["type"] == "value_error":
        detail = err["msg"].removeprefix("Value error, ")
    else:
        detail = f"expected {expected_type(key)}"
    return f"{where}: {key} = {shown}: {detail}"


def expected_type(name: str) -> str:
    """What option ``name`` takes, in words (for errors and help)."""
    field = Settings.model_fields[name]
    kind = field.annotation
    if get_origin(kind) in (Union, UnionType):  # ``X | None``
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    bounds = {type(m).__name__: m for m in field.metadata}
    if kind is bool:
        return "true or false"
    if kind is int and "Ge" in bounds and "Le" in bounds:
        return f"an integer from {bounds['Ge'].ge} to {bounds['Le'].le}"
    if kind is float and "Gt" in bounds:
        return f"a number above {bounds['Gt'].gt:g}"
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(get_args(kind))
    if isinstance(kind, type) and issubclass(kind, Enum):
        return "one of " + ", ".join(member.value for member in kind)
    if get_origin(kind) is tuple:
        return "a list of strings"
    return {int: "an integer", float: "a number", Path: "a path"}.get(kind, "a string")
