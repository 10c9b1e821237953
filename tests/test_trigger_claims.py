"""Fire claims in file mode (``SessionTriggers.fire_claim``, services/triggers/claims.py) with a
fake claimer: a scheduled tick (on time or caught up) fires only once claimed; a refused claim
fires nothing and the schedule goes on; a failed claim fires nothing, shows on the card, and
the timer keeps running; manual runs are never claimed. And the tick grid: a node resuming the
session from the same saved state computes the same ticks as its old owner."""

from __future__ import annotations

import asyncio
import shutil

from hive_server import keys
from hive_server.core.clock import FakeClock
from hive_server.services.triggers.claims import tick_text
from tests.conftest import make_settings
from tests.hive_api import HiveApi
from tests.queen_support import of_type
from tests.trigger_support import ms, next_fired, timer

INTERVAL = 600


class FakeClaims:
    """Answers claims from a script (True, False, or an exception raised); records each ask.
    ``gate``: while set and not open, a claim waits for it."""

    def __init__(self, *answers: bool | Exception):
        self.answers = list(answers)
        self.asked: list[tuple[str, float]] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, trigger_id: str, tick: float) -> bool:
        self.asked.append((trigger_id, tick))
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def claimed_session(api: HiveApi, claims: FakeClaims):
    """Session "s" whose ticks ``claims`` decides; its event stream."""
    await api.create_session(session_id="s")
    api.client.app[keys.SESSIONS].get("s").triggers.fire_claim = claims
    return await api.events("s")


async def test_a_refused_tick_fires_nothing_and_the_schedule_goes_on(api, fake_clock):
    t0 = fake_clock.time()
    claims = FakeClaims(False, True)
    stream = await claimed_session(api, claims)
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    await fake_clock.advance(INTERVAL)
    assert (await api.trigger("s", "tick"))["next_fire_at"] == ms(t0 + 2 * INTERVAL)
    await fake_clock.advance(INTERVAL)
    fired, events = await next_fired(stream)
    assert fired["data"]["tick"] == ms(t0 + 2 * INTERVAL) and fired["data"]["fire_count"] == 1
    assert of_type(events, "trigger_missed", "trigger_held") == []
    assert claims.asked == [("tick", t0 + INTERVAL), ("tick", t0 + 2 * INTERVAL)]
    card = await api.trigger("s", "tick")
    assert card["fire_count"] == 1 and card["last_outcome"] == "fired"


async def test_a_failed_claim_fires_nothing_shows_on_the_card_and_the_timer_goes_on(
        api, fake_clock, caplog):
    t0 = fake_clock.time()
    stream = await claimed_session(api, FakeClaims(ConnectionError("redis is gone"), True))
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    await fake_clock.advance(INTERVAL)
    card = await api.trigger("s", "tick")
    assert card["fire_count"] == 0 and card["last_outcome"] == "failed"
    assert card["last_error"] == (f"tick {tick_text(t0 + INTERVAL)} not fired: its fire claim "
                                  "failed (redis is gone)")
    assert card["next_fire_at"] == ms(t0 + 2 * INTERVAL)
    assert "its fire claim failed" in caplog.text
    await fake_clock.advance(INTERVAL)
    fired, _ = await next_fired(stream)
    assert fired["data"]["tick"] == ms(t0 + 2 * INTERVAL) and fired["data"]["fire_count"] == 1


async def test_a_caught_up_tick_is_claimed_too(api, fake_clock):
    t0 = fake_clock.time()
    claims = FakeClaims(False, True)
    claims.gate = asyncio.Event()
    stream = await claimed_session(api, claims)
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    await fake_clock.advance(INTERVAL)  # the first claim waits: the timer wakes late after it
    await fake_clock.advance(3 * INTERVAL)
    claims.gate.set()
    fired, events = await next_fired(stream)
    (missed,) = of_type(events, "trigger_missed")
    assert missed["data"]["missed"] == 3
    assert fired["data"]["tick"] == ms(t0 + 4 * INTERVAL) and fired["data"]["missed"] == 3
    assert claims.asked == [("tick", t0 + INTERVAL), ("tick", t0 + 4 * INTERVAL)]


async def test_a_manual_run_is_never_claimed(api):
    claims = FakeClaims()
    stream = await claimed_session(api, claims)
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    await api.run_trigger("s", "tick")
    fired, _ = await next_fired(stream)
    assert fired["data"]["manual"] is True and claims.asked == []


def test_a_tick_is_named_by_its_utc_time_to_the_millisecond():
    assert tick_text(1_800_000_600.0) == "2027-01-15T08:10:00.000+00:00"
    assert tick_text(1_800_000_600.0004) == tick_text(1_800_000_600.0)


async def test_another_node_resuming_the_saved_state_computes_the_same_ticks(
        make_client, tmp_path):
    """The interval's anchor is in the saved state: a node that resumes the session off the
    grid (its clock between two ticks) arms the old owner's next tick, not now + interval."""
    clock = FakeClock(1_800_000_000.5)
    t0 = clock.time()
    first = make_settings(tmp_path / "a")
    client = await make_client(first, clock=clock)
    api = HiveApi(client)
    await api.create_session(session_id="s")
    stream = await api.events("s")
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    await clock.advance(INTERVAL)
    await next_fired(stream)
    stream.close()
    await clock.advance(250)
    await client.close()

    second = make_settings(tmp_path / "b")
    shutil.copytree(first.home / "sessions" / "s", second.home / "sessions" / "s")
    await clock.advance(77)
    other = HiveApi(await make_client(second, clock=clock))
    assert (await other.trigger("s", "tick"))["next_fire_at"] == ms(t0 + 2 * INTERVAL)
    stream = await other.events("s")
    await next_fired(stream)  # the old owner's fire, replayed
    await clock.advance(t0 + 2 * INTERVAL - clock.time())
    fired, _ = await next_fired(stream)
    assert fired["data"]["tick"] == ms(t0 + 2 * INTERVAL) and fired["data"]["fire_count"] == 2
    stream.close()


async def test_halted_triggers_fire_nothing_and_refuse_changes(api, fake_clock):
    """``halt``: what the manager calls as it learns that the session's lease is lost."""
    claims = FakeClaims(True)
    stream = await claimed_session(api, claims)
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    api.client.app[keys.SESSIONS].get("s").triggers.halt()
    await fake_clock.advance(2 * INTERVAL)
    assert claims.asked == []
    resp = await api.client.post("/api/sessions/s/triggers/tick/deactivate")
    assert resp.status == 503 and (await resp.json())["code"] == "session_stopping"
    stream.close()
