"""Spend limits (issue 17): a session, an agent or the whole server stops at its budget before
the call that would cross it, visibly (events, status, stats, usage, metrics) and resumably
(a raised limit, a new UTC day), holding trigger fires meanwhile. Offline model and the fake
Messages API; the fake clock only."""

from __future__ import annotations

from typing import Any

from hive_server import keys
from hive_server.core.clock import FakeClock
from tests.agent_fixtures import write_agent
from tests.conftest import create_session, make_settings
from tests.fakes.fake_anthropic import text_turn, tool_turn
from tests.queen_support import chat, claude, of_type, open_stream, read_log, until, until_any
from tests.trigger_support import post_trigger, timer

LIMIT = 5200  # offline: a call's estimate is its input (JSON size / 4) plus max_tokens 4096
WORDY = "a " * 600  # ~300 tokens more estimated, ~600 more counted: the first call fits, the
# second (spent + its estimate) does not


async def end_of_turn(stream: Any) -> list[dict]:
    return await until_any(stream, "execution_completed", "execution_failed")


async def stats(client: Any, session_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/sessions/{session_id}/stats")
    assert resp.status == 200, await resp.text()
    return await resp.json()


def spent_tokens(body: dict[str, Any]) -> int:
    return body["usage"]["tokens"]["input"] + body["usage"]["tokens"]["output"]


async def parked_session(client: Any, session_id: str = "s") -> Any:
    """A session whose second chat was refused by its own limit (LIMIT tokens)."""
    await create_session(client, session_id=session_id)
    stream = await open_stream(client, session_id)
    await chat(client, session_id, WORDY)
    assert of_type(await end_of_turn(stream), "execution_completed")
    await chat(client, session_id, "and again")
    assert of_type(await end_of_turn(stream), "execution_failed")
    return stream


async def test_a_session_limit_refuses_the_call_that_would_cross_it_and_parks(make_client,
                                                                             tmp_path):
    client = await make_client(make_settings(tmp_path, session_budget_tokens=LIMIT))
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    await chat(client, "s", WORDY)
    first = await end_of_turn(stream)
    assert of_type(first, "execution_completed") and of_type(first, "llm_turn_complete")
    spent = spent_tokens(await stats(client, "s"))
    await chat(client, "s", "and again")
    second = await end_of_turn(stream)
    assert of_type(second, "llm_turn_complete") == []  # the call was not made
    [exceeded] = of_type(second, "budget_exceeded")
    [failed] = of_type(second, "execution_failed")
    assert exceeded["seq"] < failed["seq"]
    assert failed["data"] | {"error": ""} == {
        "error": "", "error_type": "budget_exceeded", "reason": None, "level": "session",
        "kind": "tokens", "limit": LIMIT, "spent": spent}
    assert exceeded["data"]["needed_tokens"] > LIMIT - spent
    assert (await (await client.get("/api/sessions/s")).json())["status"] == "budget_exceeded"
    budget = (await stats(client, "s"))["budget"]
    assert budget["status"] == "budget_exceeded"
    assert budget["limits"] == [{"level": "session", "scope": "s", "kind": "tokens",
                                 "limit": LIMIT, "spent": spent, "remaining": LIMIT - spent,
                                 "reserved": 0}]
    await chat(client, "s", "a third time")  # parked: refused at once, nothing spent
    third = await end_of_turn(stream)
    assert of_type(third, "execution_failed")[0]["data"]["error_type"] == "budget_exceeded"
    assert spent_tokens(await stats(client, "s")) == spent


async def test_a_limit_raised_over_the_api_resumes_work(make_client, tmp_path):
    client = await make_client(make_settings(tmp_path, session_budget_tokens=LIMIT))
    stream = await parked_session(client)
    resp = await client.patch("/api/sessions/s", json={"budget": {"tokens": LIMIT // 2}})
    assert (await resp.json())["budget"]["status"] == "budget_exceeded"  # still too low
    resp = await client.patch("/api/sessions/s", json={"budget": {"tokens": 50_000}})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["budget"]["status"] == "ok" and body["budget"]["parked"] is None
    assert body["budget"]["session_budget"] == {"tokens": 50_000, "cost_usd": None}
    events = await until(stream, "budget_resumed")
    assert events[-1]["data"] == {"held_fires": 0}
    assert (await (await client.get("/api/sessions/s")).json())["status"] == "idle"
    await chat(client, "s", "go on")
    assert of_type(await end_of_turn(stream), "execution_completed")
    resp = await client.patch("/api/sessions/s", json={"budget": None})  # cleared
    assert (await resp.json())["budget"] == {"status": "ok", "session_budget": None,
                                             "limits": [], "parked": None, "held_fires": 0}


async def test_patch_budget_refuses_bad_input_and_sets_a_cold_sessions_limit(client, api):
    await api.create_session(session_id="s")
    for body, status, code in (({}, 422, "validation_error"),
                               ({"budget": {"tokens": -1}}, 422, None),
                               ({"budget": {"dollars": 1}}, 422, None)):
        resp = await client.patch("/api/sessions/s", json=body)
        assert resp.status == status, await resp.text()
        assert code is None or (await resp.json())["code"] == code
    assert (await client.delete("/api/sessions/s")).status == 200
    resp = await client.patch("/api/sessions/s", json={"title": "t", "budget": {"tokens": 9}})
    assert resp.status == 200, await resp.text()
    assert (await resp.json()) == {
        "session_id": "s", "title": "t", "live": False,
        "budget": {"status": "ok", "session_budget": {"tokens": 9, "cost_usd": None},
                   "limits": [], "parked": None, "held_fires": 0}}
    resp = await client.patch("/api/sessions/nope", json={"budget": {"tokens": 9}})
    assert resp.status == 404 and (await resp.json())["code"] == "session_not_found"
    resp = await client.patch("/api/sessions/s", json={"title": "kept"})
    assert (await resp.json()) == {"session_id": "s", "title": "kept", "live": False,
                                   "budget": None}
    await api.create_session(session_id="s")  # resumed: the limit written cold applies
    budget = (await stats(client, "s"))["budget"]
    assert budget["session_budget"] == {"tokens": 9, "cost_usd": None}
    assert [(v["level"], v["limit"]) for v in budget["limits"]] == [("session", 9)]


async def test_a_warning_at_80_percent_of_a_limit_once(make_client, tmp_path, fake, fake_url):
    fake.script(text_turn("big", input_tokens=85_000), text_turn("small", input_tokens=10))
    client = await make_client(make_settings(tmp_path), llm=claude(fake_url))
    await create_session(client, session_id="s")
    resp = await client.patch("/api/sessions/s", json={"budget": {"tokens": 100_000}})
    assert resp.status == 200
    stream = await open_stream(client, "s")
    for text in ("one", "two"):
        await chat(client, "s", text)
        await until(stream, "execution_completed")
    warnings = of_type(read_log(tmp_path / "home", "s"), "budget_warning")
    assert [w["data"] for w in warnings] == [{
        "level": "session", "kind": "tokens", "limit": 100_000,
        "spent": warnings[0]["data"]["spent"],
        "remaining": 100_000 - warnings[0]["data"]["spent"]}]
    assert warnings[0]["data"]["spent"] >= 85_000


async def test_an_agent_limit_counts_every_session_of_the_agent_today(make_client, tmp_path,
                                                                     fake, fake_url):
    write_agent(tmp_path / "agents", "pricey", {"name": "Pricey",
                                                 "budget": {"tokens": 50_000}})
    fake.script(text_turn("spent most", input_tokens=48_000))
    client = await make_client(make_settings(tmp_path), llm=claude(fake_url))
    for session_id in ("a", "b"):
        await create_session(client, session_id=session_id, agent_id="pricey")
    stream_a, stream_b = await open_stream(client, "a"), await open_stream(client, "b")
    await chat(client, "a", "spend")
    assert of_type(await end_of_turn(stream_a), "execution_completed")
    await chat(client, "b", "spend too")
    [failed] = of_type(await end_of_turn(stream_b), "execution_failed")
    assert failed["data"]["level"] == "agent" and failed["data"]["limit"] == 50_000
    assert failed["data"]["spent"] >= 48_000
    usage = await (await client.get("/api/usage")).json()
    [agent] = [v for v in usage["budget"]["limits"] if v["level"] == "agent"]
    assert agent["scope"] == "pricey" and agent["spent"] == failed["data"]["spent"]


async def test_a_server_limit_holds_across_a_restart_and_a_new_utc_day_resumes(
        make_client, tmp_path, fake, fake_url):
    fake.script(text_turn("spent most", input_tokens=48_000), text_turn("a new day"))
    clock = FakeClock()
    settings = make_settings(tmp_path, daily_budget_tokens=50_000)
    client = await make_client(settings, llm=claude(fake_url), clock=clock)
    await create_session(client, session_id="a")
    await create_session(client, session_id="b")
    stream = await open_stream(client, "a")
    await chat(client, "a", "spend")
    assert of_type(await end_of_turn(stream), "execution_completed")
    await chat(client, "a", "more")
    assert of_type(await end_of_turn(stream), "execution_failed")[0]["data"]["level"] == "server"
    stream.close()
    await client.close()
    client = await make_client(settings, llm=claude(fake_url), clock=clock)  # a restart
    [server] = (await (await client.get("/api/usage")).json())["budget"]["limits"]
    assert server["level"] == "server" and server["spent"] >= 48_000  # the day's spend kept
    assert (await stats(client, "a"))["budget"]["status"] == "budget_exceeded"
    stream = await open_stream(client, "a", after_seq=(await stats(client, "a"))["last_seq"])
    await clock.advance(86_400)  # the next UTC midnight: the day's spend starts at 0
    await until(stream, "budget_resumed")
    await chat(client, "a", "go on")
    assert of_type(await end_of_turn(stream), "execution_completed")


async def test_parallel_workers_share_the_session_budget_and_stop_together(
        make_client, tmp_path, fake, fake_url):
    """Six workers start at once, each call estimated at ~4.2k tokens and spending 3k: the
    calls under way are reserved, so only those that fit together are made (counting only
    what was spent, all six would pass the check and spend 18k)."""
    write_agent(tmp_path / "agents", "crew", {"name": "Crew", "max_parallel_workers": 8})
    fake.script(tool_turn([("run_worker", {"task": f"task {n}"}) for n in range(6)]),
                *(text_turn(f"done {n}", input_tokens=3000) for n in range(6)))
    limit = 16_000
    client = await make_client(make_settings(tmp_path, session_budget_tokens=limit),
                               llm=claude(fake_url))
    await create_session(client, session_id="s", agent_id="crew")
    stream = await open_stream(client, "s")
    await chat(client, "s", "fan out")
    events = await end_of_turn(stream)
    [failed] = of_type(events, "execution_failed")
    assert failed["data"]["error_type"] == "budget_exceeded"
    [exceeded] = of_type(events, "budget_exceeded")
    assert exceeded["data"]["stream_id"].startswith("worker:")
    ended = len(of_type(events, "worker_failed")) + len(of_type(events, "worker_completed"))
    assert len(of_type(events, "worker_started")) == ended == 6  # every one ended
    assert of_type(events, "worker_failed")  # the refused one, and those cancelled with it
    body = await stats(client, "s")
    assert spent_tokens(body) <= limit  # unreserved, six calls of 3k would have been made
    assert body["budget"]["limits"][0]["reserved"] == 0
    assert body["queen"]["busy"] is False and body["workers"]["running"] == 0
    metrics = await (await client.get("/metrics")).text()
    assert f'hive_spend_tokens_total{{agent="crew",session="s"}} {float(spent_tokens(body))}' \
        in metrics
    assert "hive_budget_parked_sessions 1.0" in metrics


async def test_trigger_fires_into_a_parked_session_are_held_kept_over_a_restart_and_handed_over(
        make_client, tmp_path):
    clock = FakeClock()
    settings = make_settings(tmp_path, session_budget_tokens=LIMIT)
    client = await make_client(settings, clock=clock)
    stream = await parked_session(client)
    await post_trigger(client, "s", timer("tick", interval_minutes=5))
    for _ in range(2):
        await clock.advance(300)
        await until(stream, "trigger_held")
    assert of_type(read_log(tmp_path / "home", "s"), "trigger_fired") == []
    stream.close()
    await client.close()
    client = await make_client(settings, clock=clock)  # a restart while parked
    budget = (await stats(client, "s"))["budget"]
    assert budget["status"] == "budget_exceeded" and budget["held_fires"] == 2
    assert budget["parked"]["level"] == "session"
    stream = await open_stream(client, "s", after_seq=(await stats(client, "s"))["last_seq"])
    resp = await client.patch("/api/sessions/s", json={"budget": {"tokens": 100_000}})
    assert (await resp.json())["budget"]["status"] == "ok"
    events = await until(stream, "execution_completed")
    [resumed] = of_type(events, "budget_resumed")
    [missed] = of_type(events, "trigger_missed")
    [fired] = of_type(events, "trigger_fired")
    assert resumed["data"] == {"held_fires": 2}
    assert (missed["data"]["missed"], missed["data"]["policy"]) == (2, "fire_once")
    assert fired["data"]["missed"] == 2 and resumed["seq"] < missed["seq"] < fired["seq"]
    assert (await stats(client, "s"))["budget"]["held_fires"] == 0
    assert client.app[keys.BUDGETS].sessions["s"].park is None


async def test_the_offline_model_counts_tokens_at_zero_cost(make_client, tmp_path):
    client = await make_client(make_settings(tmp_path, session_budget_usd=0.01))
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    for text in ("one", "two", "three"):
        await chat(client, "s", text)
        assert of_type(await end_of_turn(stream), "execution_completed")
    [limit] = (await stats(client, "s"))["budget"]["limits"]
    assert (limit["kind"], limit["spent"], limit["remaining"]) == ("cost_usd", 0, 0.01)
    assert spent_tokens(await stats(client, "s")) > 0
