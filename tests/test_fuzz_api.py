"""Schemathesis against a real server process: every operation of GET /api/openapi.json except
the SSE streams, with a bounded number of generated requests each.

Fails on any 5xx (``not_a_server_error``), on a request the document allows that the server
refuses with anything but 401/403/404/409/429 (``positive_data_acceptance``), on a status the
document does not list (``status_code_conformance``) and on an answer that does not fit its
response model (``response_schema_conformance``). Half of the generated session ids are
replaced by a live session's id, so the operations on a session reach past the 404.

schemathesis and requests are imported where they are used (about 0.4 s of CPU): every pytest
worker collects this module, most never run it, and ``--fast`` runs none of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests import zygote
from tests.server_process import READY, server_env
from tests.test_openapi import API

if TYPE_CHECKING:
    import schemathesis
    from schemathesis.schemas import APIOperation

pytestmark = pytest.mark.slow  # every test here starts a process

TOKEN = "fuzz-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STREAMS = r"/events$|^/api/sessions/live$|^/api/events/global$"
EXAMPLES = int(os.environ.get("HIVE_FUZZ_EXAMPLES", "12"))  # a longer run by hand: 500
STREAM_OPERATIONS = {("get", "/api/sessions/{session_id}/events"), ("get", "/api/sessions/live"),
                     ("get", "/api/events/global")}
# every operation tests/test_openapi.py lists but the streams (and the document itself, which
# schemathesis may leave out as it loads it from that URL)
FUZZED = sorted(set(API) - STREAM_OPERATIONS - {("get", "/api/openapi.json")})


class Server:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.url = ""
        self.proc: zygote.BlockingForkedProcess | None = None

    def start(self) -> Server:
        self.proc = zygote.spawn_blocking(
            ("serve", "--port", "0", "--durability", "none",
             "--home", str(self.tmp / "home"), "--agents-dir", str(self.tmp / "agents"),
             "--queens-dir", str(self.tmp / "queens"), "--log-level", "warning"),
            {**server_env(), "HIVE_TOKEN": TOKEN})
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if match := READY.search(line):
                self.url = match.group(1)
                return self
        raise AssertionError("server exited before printing its ready line")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


# Session-scoped (only this module uses them): the parallel runs share the 52 tests out and a
# worker may run some, then others, then more of them; it makes the server and loads the
# schema (its regexes compiled: seconds) once, not each time the module comes back to it.
@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fuzz")
    for folder in ("agents", "queens"):
        (tmp / folder).mkdir()
    server = Server(tmp).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def live_session(server: Server) -> str:
    """A live session with one timer trigger, for the operations on a session."""
    import requests

    resp = requests.post(f"{server.url}api/sessions", json={"session_id": "fuzz-live"},
                         headers=AUTH, timeout=10)
    assert resp.status_code == 201, resp.text
    trigger = {"id": "nightly", "trigger_type": "timer", "trigger_config": {"cron": "0 3 * * *"},
               "task": "tidy up"}
    resp = requests.post(f"{server.url}api/sessions/fuzz-live/triggers", json=trigger,
                         headers=AUTH, timeout=10)
    assert resp.status_code == 201, resp.text
    return "fuzz-live"


@pytest.fixture(scope="session")
def api_schema(server: Server) -> schemathesis.BaseSchema:
    import schemathesis

    loaded = schemathesis.openapi.from_url(f"{server.url}api/openapi.json", headers=AUTH)
    return loaded.exclude(path_regex=STREAMS)


def fuzz(operation: APIOperation, server: Server, live_session: str) -> None:
    """``EXAMPLES`` generated requests of one operation (raises the first failure found)."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        positive_data_acceptance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, positive_data_acceptance, status_code_conformance,
              response_schema_conformance]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
    @given(case=operation.as_strategy())
    def run(case: schemathesis.Case) -> None:
        params = case.path_parameters or {}
        session_id = params.get("session_id")
        if session_id is not None and case.method != "DELETE" and len(session_id) % 2 == 0:
            params["session_id"] = live_session
        case.call_and_validate(base_url=server.url.rstrip("/"), headers=AUTH, checks=checks,
                               timeout=15)

    run()


@pytest.mark.parametrize(("method", "path"), FUZZED, ids=[f"{m.upper()} {p}" for m, p in FUZZED])
def test_no_5xx_and_no_refusal_of_a_documented_request(api_schema, server, live_session, method,
                                                       path):
    # schemathesis's own pytest loader (from_fixture) needs a pytest < 9 internal: one
    # Hypothesis run per operation, each its own test (the parallel runs share them out)
    fuzz(api_schema[path][method.upper()], server, live_session)


def test_the_fuzzed_document_leaves_out_only_the_streams(api_schema):
    operations = [op.ok() for op in api_schema.get_all_operations()]
    paths = {operation.path for operation in operations}
    assert "/api/sessions/{session_id}/events/history" in paths
    assert "/api/sessions/{session_id}/events" not in paths
    assert "/api/sessions/live" not in paths and "/api/events/global" not in paths
    fuzzed = {(operation.method.lower(), operation.path) for operation in operations}
    assert fuzzed == set(FUZZED)  # each one is a test above
    assert fuzzed | STREAM_OPERATIONS | {("get", "/api/openapi.json")} == set(API)
    assert not fuzzed & STREAM_OPERATIONS
