"""The cluster harness of the failover tests (tests/cluster_nodes.py) on its own: nodes start
on one Redis and answer, a follower streams a session, and leaving the block leaves no node
process behind, a killed or a paused one included."""

from __future__ import annotations

import os

from tests.cluster_nodes import READ_TIMEOUT, running_cluster
from tests.redis_server import redis_test


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@redis_test
async def test_nodes_answer_a_follower_streams_and_no_node_outlives_the_block(
        tmp_path, redis_url):
    async with running_cluster(tmp_path, redis_url, 3) as cluster:
        n1, n2, n3 = cluster.nodes
        pids = [node.server.proc.pid for node in cluster.nodes]
        for node in cluster.nodes:
            assert (await cluster.health(node))["status"] == "ok"
        status, body = await cluster.request(n1, "POST", "/api/sessions", {"session_id": "s"})
        assert status == 201, body
        follower = cluster.follow(n1, "s")
        await follower.until(1, READ_TIMEOUT)
        assert follower.connects == [("n1", None, 200)] and follower.seen[0] == 1
        await n3.kill9()
        n2.pause()
        assert [node.name for node in cluster.running()] == ["n1"]
    assert [alive(pid) for pid in pids] == [False, False, False]
    assert all(node.server.proc.returncode is not None for node in cluster.nodes)
