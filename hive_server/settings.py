"""Settings: every option, resolved once, from flags > env (HIVE_*) > config.toml > defaults.

This is the only module that reads ``os.environ`` or the home directory.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hive_server.core.eventlog import Durability

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
    token: str = Field(default_factory=lambda: secrets.token_urlsafe(24))
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


ENV_NAMES = {
    "host": "HIVE_HOST", "port": "HIVE_PORT", "home": "HIVE_HOME",
    "agents_dir": "HIVE_AGENTS_DIR", "queens_dir": "HIVE_QUEENS_DIR",
    "durability": "HIVE_DURABILITY", "no_auth": "HIVE_NO_AUTH", "log_level": "HIVE_LOG_LEVEL",
    "model": "HIVE_MODEL", "webhook_host": "HIVE_WEBHOOK_HOST",
    "webhook_port": "HIVE_WEBHOOK_PORT", "token": "HIVE_TOKEN",
    "ui_dir": "HIVE_UI_DIR", "allowed_origins": "HIVE_ALLOWED_ORIGINS",
}


def load_settings(flags: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Merge CLI flags (None = not given), HIVE_* env vars, config.toml and defaults."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    home = flags.get("home") or env.get("HIVE_HOME") or "~/.hive"
    values.update(_config_file(Path(home).expanduser() / "config.toml"))
    for field, name in ENV_NAMES.items():
        if name in env and env[name] != "":
            values[field] = _env_value(field, env[name])
    values.update({k: v for k, v in flags.items() if v is not None and k in Settings.model_fields})
    values.setdefault("home", home)
    values["anthropic_api_key"] = env.get("ANTHROPIC_API_KEY") or None
    values["anthropic_base_url"] = env.get("ANTHROPIC_BASE_URL") or None
    values["env"] = env
    return Settings(**values)


def _env_value(field: str, raw: str) -> Any:
    if field == "no_auth":
        return raw.lower() in {"1", "true", "yes", "on"}
    if field == "allowed_origins":
        return [part for part in raw.split(",") if part.strip()]
    return raw


def _config_file(path: Path) -> dict[str, Any]:
    """Optional defaults from ``$HIVE_HOME/config.toml`` (keys = option names)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ValueError(f"{path}: {exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except ValueError as exc:  # TOMLDecodeError, UnicodeDecodeError
        raise ValueError(f"{path}: {exc}") from None
    section = data.get("server", data)
    if not isinstance(section, dict):
        raise ValueError(f"{path}: [server] must be a table")
    keys = {k: k.replace("-", "_") for k in section}
    # ``home`` is where this file was found: the file cannot move it.
    return {name: section[k] for k, name in keys.items()
            if name in Settings.model_fields and name != "home"}
