"""Shared fixtures: the real app on a loopback test server, HIVE_HOME under tmp_path.

The server's modules are imported where a fixture or helper uses them, not at the top: the
xdist controller imports this file too, before it starts the workers, and runs no test (the
server's import, about 0.7 s, was on every run's path to its first test)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.fakes import FakeAnthropic
from tests.worker_groups import OUTSIDE, SDK, ModuleGroups, group_of, outside_the_sdk_group

if TYPE_CHECKING:
    from aiohttp.test_utils import TestClient

    from hive_server.core.clock import FakeClock
    from hive_server.settings import Settings
    from tests.hive_api import HiveApi

pytest_plugins = ["tests.redis_server"]  # redis_server, redis_url, redis_client

TOKEN = "test-token-0123456789"

# Property tests on a shared 2-core machine: a slow moment must not fail a run as "too slow"
# (a health check, not a property); each test keeps its own example count.
hypothesis_settings.register_profile(
    "hive", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("hive")

# Every test that starts a process (a server, Chromium, a setup script, a child to kill -9) is
# marked ``slow`` (./scripts/test --fast skips them); a test that starts one unmarked fails.
# (tests/zygote.py forks servers in another process: it raises its own event)
SPAWN_EVENTS = frozenset({"subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn",
                          "os.fork", "os.forkpty", "os.exec", "tests.zygote.spawn"})
_spawned: list[str] = []
_spawned_on_claude: list[str] = []  # servers forked from the zygote that loaded the SDK
_outside_the_sdk_group: set[str] = set()


def _note_spawn(event: str, args: tuple[Any, ...]) -> None:
    if event in SPAWN_EVENTS:
        _spawned.append(f"{event} {args[0]!r}")
        if event == "tests.zygote.spawn" and args[1] == "sdk":
            _spawned_on_claude.append(repr(args[0]))


sys.addaudithook(_note_spawn)  # an audit hook stays for the process: it only notes


def uses_the_sdk(item: pytest.Item) -> bool:
    """The test imports the Anthropic SDK (about 2 s of CPU, once per process): it talks to the
    fake Messages API (``fake_url``) or is marked ``anthropic_sdk``."""
    return ("fake_url" in getattr(item, "fixturenames", ())
            or item.get_closest_marker("anthropic_sdk") is not None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests first (in their files' order): after the groups of
    tests/worker_groups.py, the workers take the tests in this order, the longest (the quick
    bench, Chromium) from the first seconds, and the suite ends on short tests."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    _outside_the_sdk_group.update(outside_the_sdk_group(items, uses_the_sdk))
    # croniter's import starts a process (``file -b``: platform.architecture(), to learn if it
    # runs on 32 bits). Most runs import it at collection, with a test module; a run whose
    # first import of it was in a test failed that test as "started a process but is not
    # marked slow" (./scripts/test tests/test_openapi.py did). Imported here, before any test.
    import croniter  # noqa: F401


@pytest.hookimpl(optionalhook=True)  # a pytest run without xdist (tests/test_redis_fixture.py)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` (./scripts/test): tests/worker_groups.py's groups."""
    return ModuleGroups(config, log) if config.getvalue("dist") == "loadgroup" else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _spawned.clear()  # from here: this test's fixtures, then the test
    _spawned_on_claude.clear()
    if item.nodeid in _outside_the_sdk_group:
        pytest.fail(OUTSIDE, pytrace=False)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    if _spawned and item.get_closest_marker("slow") is None:
        pytest.fail(f"started a process but is not marked slow: {_spawned[0]}", pytrace=False)
    if _spawned_on_claude and group_of(item.nodeid) != SDK:
        pytest.fail(f"{OUTSIDE} (it forked a server on Claude, from the zygote that imported "
                    f"the SDK: {_spawned_on_claude[0]})", pytrace=False)
    return result


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    from hive_server.settings import Settings

    values: dict[str, Any] = {
        "home": tmp_path / "home", "agents_dir": tmp_path / "agents",
        "queens_dir": tmp_path / "queens", "token": TOKEN, "durability": "batch",
        "watch_folders": False,  # two watchers per app were most of an app test's time
    }
    values.update(overrides)
    return Settings(**values)


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def fake_clock() -> FakeClock:
    from hive_server.core.clock import FakeClock

    return FakeClock()


ClientFactory = Callable[..., Any]


@pytest.fixture
async def make_client(aiohttp_client: Any, tmp_path: Path) -> AsyncIterator[ClientFactory]:
    """Build a client for a fresh app; call again with the same settings to 'restart'. The
    sessions live at the last stop are resumed before it returns (``resumed=False``: not
    waited for; they resume in the background, as in a real start)."""
    from hive_server import keys
    from hive_server.app import create_app
    from hive_server.core.clock import FakeClock
    from hive_server.llm.offline import OfflineClient

    async def factory(settings: Settings | None = None, *, resumed: bool = True,
                      **kwargs: Any) -> TestClient:
        app = create_app(settings or make_settings(tmp_path),
                         llm=kwargs.pop("llm", None) or OfflineClient(),
                         clock=kwargs.pop("clock", None) or FakeClock())
        kwargs.setdefault("headers", AUTH)
        client = await aiohttp_client(app, **kwargs)
        if resumed:
            await app[keys.SESSIONS].boot.wait()
        return client

    yield factory


@pytest.fixture
async def client(make_client: ClientFactory, settings: Settings,
                 fake_clock: FakeClock) -> TestClient:
    """The app on ``settings`` and ``fake_clock``: a test that moves time requests
    ``fake_clock`` too (the same clock). A module that needs more before or after the start
    overrides ``client`` and requests this one (``async def client(agents_dir, client)``)."""
    return await make_client(settings, clock=fake_clock)


@pytest.fixture
def fake() -> FakeAnthropic:
    """A local fake Messages API (script its replies; it validates every request)."""
    return FakeAnthropic()


@pytest.fixture
async def fake_url(fake: FakeAnthropic, aiohttp_server: Any) -> str:
    """The fake served on loopback: the ``base_url`` of an ``AnthropicClient``."""
    server = await aiohttp_server(fake.app)
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def api(client: TestClient) -> HiveApi:
    """The ``client``'s app through the test façade (tests/hive_api.py)."""
    from tests.hive_api import HiveApi

    return HiveApi(client)


async def create_session(client: TestClient, **body: Any) -> dict[str, Any]:
    """``HiveApi.create_session`` for the call sites that hold only a client."""
    from tests.hive_api import HiveApi

    return await HiveApi(client).create_session(**body)
