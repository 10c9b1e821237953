"""The access log: quiet by default (a slow request and a 5xx get a WARNING line, a 4xx a
DEBUG one), a line per request with ``access_log``; never the query string."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hive_server import keys
from hive_server.app import create_app
from hive_server.cli import build_parser
from hive_server.core.clock import FakeClock
from hive_server.llm.offline import OfflineClient
from hive_server.web.access_log import runner_options
from tests.conftest import AUTH, TOKEN, make_settings

ACCESS = "aiohttp.access"


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@pytest.fixture
def serve(aiohttp_client, tmp_path):
    """A client of the real app served with ``runner_options`` of its settings (plus a route
    that fails, for the 5xx line)."""

    async def start(**overrides):
        settings = make_settings(tmp_path, **overrides)
        app = create_app(settings, llm=OfflineClient(), clock=FakeClock())
        app.router.add_get("/api/test-boom", app[keys.GUARD].wrap(boom))
        server = TestServer(app)  # started here: aiohttp_client's server_kwargs skip the runner
        await server.start_server(**runner_options(settings))
        return await aiohttp_client(server, headers=AUTH)

    return start


def access_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == ACCESS]


async def test_a_fast_success_is_not_logged_by_default_and_a_4xx_only_at_debug(serve, caplog):
    client = await serve()
    with caplog.at_level(logging.DEBUG, logger=ACCESS):
        assert (await client.get("/api/health")).status == 200
        assert (await client.get("/api/sessions/nope")).status == 404
    [(level, line)] = access_lines(caplog)
    assert level == logging.DEBUG
    assert '"GET /api/sessions/nope HTTP/1.1" 404' in line


async def test_access_log_on_gives_every_request_an_info_line_without_the_query(serve, caplog):
    client = await serve(access_log=True)
    with caplog.at_level(logging.INFO, logger=ACCESS):
        resp = await client.get(f"/api/health?token={TOKEN}", headers={})
        assert resp.status == 200
    [(level, line)] = access_lines(caplog)
    assert level == logging.INFO
    assert '"GET /api/health HTTP/1.1" 200' in line
    assert TOKEN not in line


async def test_a_slow_request_is_a_warning(serve, caplog):
    client = await serve(slow_request_seconds=1e-9)  # every request is slower than that
    with caplog.at_level(logging.INFO, logger=ACCESS):
        assert (await client.get("/api/health")).status == 200
    [(level, line)] = access_lines(caplog)
    assert level == logging.WARNING
    assert '"GET /api/health HTTP/1.1" 200' in line


async def test_a_5xx_is_a_warning(serve, caplog):
    client = await serve()
    with caplog.at_level(logging.INFO, logger=ACCESS):
        resp = await client.get("/api/test-boom")
        assert resp.status == 500
        assert (await resp.json())["code"] == "internal_error"
    [(level, line)] = access_lines(caplog)
    assert level == logging.WARNING
    assert '"GET /api/test-boom HTTP/1.1" 500' in line


async def test_a_long_stream_is_not_a_slow_request(serve, caplog):
    client = await serve(slow_request_seconds=1e-9)
    resp = await client.post("/api/sessions", json={})
    session_id = (await resp.json())["session_id"]
    with caplog.at_level(logging.INFO, logger=ACCESS):
        async with client.get(f"/api/sessions/{session_id}/events") as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            await stream.content.readline()
            assert (await client.delete(f"/api/sessions/{session_id}")).status == 200
            await stream.read()  # the stop ends the stream: the server has finished it
        assert (await client.get("/api/health")).status == 200
    lines = access_lines(caplog)
    assert [line for _, line in lines if "/events" in line] == []
    assert [level for level, line in lines if "/api/health" in line] == [logging.WARNING]


def test_access_log_flags():
    args = build_parser().parse_args(["serve", "--access-log", "--slow-request-seconds", "2"])
    assert (args.access_log, args.slow_request_seconds) == (True, 2.0)
    assert build_parser().parse_args(["serve"]).access_log is None  # the settings decide
