"""Redis URLs, checked and shown without their password. No redis-py here: ``settings``
validates ``--redis`` with it, and a server without ``--redis`` never imports redis-py (about
160 ms of start-up)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("redis", "rediss", "unix")


def check_url(url: str) -> str:
    """``url`` when it is a Redis URL (``redis://[user:password@]host[:port][/db]``,
    ``rediss://`` for TLS, ``unix:///path/to/socket``); ValueError saying what is expected."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a Redis URL ({exc})") from None
    if parts.scheme not in SCHEMES:
        raise ValueError("expected redis://[user:password@]host[:port][/db], rediss://... "
                         "(TLS) or unix:///path/to/redis.sock")
    if parts.scheme == "unix" and not parts.path:
        raise ValueError("a unix:// Redis URL needs the socket's path: unix:///path/to/redis.sock")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError("a Redis URL needs a host: redis://host[:port][/db]")
    if port == 0:
        raise ValueError("a Redis URL needs a port from 1 to 65535")
    db = parts.path.lstrip("/")
    if parts.scheme != "unix" and db and not db.isdigit():
        raise ValueError(f"the database in a Redis URL is a number (/0), not {db!r}")
    return url


def shown(url: str) -> str:
    """``url`` as it may be printed: its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
