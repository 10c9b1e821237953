"""This node of a cluster on one Redis (issue 14): what a server started with ``--redis`` holds
beside its sessions.

``RedisNode`` bundles the node's Redis pieces, each one built and tested on its own:
the client (one connection pool, ``redis_conn.connect``), the node id, the ``LeaseKeeper``
(one task renewing every lease the node holds), the ``RedisFeed`` (SSE of sessions another
node runs) and the ``Forwarder`` (chats and trigger runs for those sessions). The session
manager sets ``on_lost`` to its own handler: the keeper calls it when a lease is given up.

``start`` starts the keeper; ``close`` stops the keeper and the feed's readers, then closes
the client. The app owns it (``app.py``, ``_cluster_ctx``), started before the sessions and
closed after them.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable

import redis.asyncio

from hive_server.core.redis_feed import RedisFeed
from hive_server.core.redis_forward import Forwarder
from hive_server.core.redis_lease import LeaseKeeper, LeaseStore

log = logging.getLogger(__name__)
NODE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def default_node_id() -> str:
    """``<host name>-<pid>``: unique on one machine, and new at every start (a restarted node
    never takes itself for the holder of its old leases)."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40] or "node"
    return f"{host}-{os.getpid()}"


class RedisNode:
    """See the module docstring."""

    def __init__(self, client: redis.asyncio.Redis, node_id: str, lease_ttl_ms: int):
        self.client = client
        self.node_id = node_id
        self.leases = LeaseStore(client)
        self.keeper = LeaseKeeper(self.leases, node_id, lease_ttl_ms, self._lost)
        self.feed = RedisFeed(client)
        self.forwarder = Forwarder(client)
        self.on_lost: Callable[[str], None] = _unhandled

    @property
    def lease_ttl_ms(self) -> int:
        return self.keeper.ttl_ms

    def _lost(self, session_id: str) -> None:
        self.on_lost(session_id)

    def start(self) -> None:
        self.keeper.start()

    async def close(self) -> None:
        await self.keeper.close()
        await self.feed.close()
        await self.client.aclose()


def _unhandled(session_id: str) -> None:
    log.warning("lease of session %s lost before the sessions were started", session_id)
