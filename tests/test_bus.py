"""The event bus: bounded subscribers, lagging ones dropped, publisher never blocked."""

from __future__ import annotations

from hive_server.core.bus import EventBus
from hive_server.models.events import Event


def ev(seq: int) -> Event:
    return Event(seq=seq, type="client_output_delta", session_id="s", data={"n": seq})


async def test_subscribe_returns_handle_that_unsubscribes():
    bus = EventBus("s")
    sub = bus.subscribe()
    bus.publish(ev(1))
    assert (await sub.get()).seq == 1
    sub.close()
    assert bus.subscriber_count == 0
    bus.publish(ev(2))
    assert await sub.get() is None


async def test_stalled_subscriber_is_dropped_others_continue():
    bus = EventBus("s")
    stalled = bus.subscribe(maxsize=5)
    healthy = bus.subscribe(maxsize=100)
    for seq in range(1, 51):
        bus.publish(ev(seq))  # never awaits: the publisher is never blocked
        assert (await healthy.get()).seq == seq
    assert bus.dropped_subscribers == 1
    assert stalled.end_reason == "lagged"
    drained = [e.seq async for e in stalled]
    assert drained == [1, 2, 3, 4, 5]  # everything it had, then the end: no silent skip
    assert bus.subscriber_count == 1


async def test_type_filter_and_close_ends_iteration():
    bus = EventBus("s")
    sub = bus.subscribe(types=frozenset({"session_stopped"}))
    bus.publish(ev(1))
    bus.publish(Event(seq=2, type="session_stopped", session_id="s"))
    bus.close()
    assert [e.seq async for e in sub] == [2]
    late = bus.subscribe()
    assert await late.get() is None
