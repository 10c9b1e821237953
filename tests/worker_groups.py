"""Which pytest worker runs what (``./scripts/test`` passes ``--dist loadgroup``).

Each test is a unit of its own, handed to whichever worker has run out of work, in the order
collected (tests/conftest.py puts the slow ones first), except the modules of a group below:
a group is one unit, all its tests on one worker. A group's tests share something that costs
seconds of CPU once per process:

- ``anthropic_sdk``: importing the Anthropic SDK (about 2 s), in the worker (a test on the fake
  Messages API) or in the zygote that forks servers on Claude (tests/zygote.py; tests/conftest.py
  fails a test that forks one outside this group);
- ``fuzz``: the fuzz test's server and its loaded schema (session fixtures, about 2 s);
- ``source_scan``: the syntax trees of every server module (test_error_codes.py, about 1 s).

xdist's own ``loadgroup`` reads an ``xdist_group`` mark into the test's id; under pytest 9 the id
no longer takes it, and every test ends up a unit of its own. The groups here are named by
module instead, which the controller reads from the id. ``outside_the_sdk_group`` (on every
worker's collection) keeps the table true: a test that uses the SDK in a module not listed fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from xdist.scheduler import LoadScopeScheduling

if TYPE_CHECKING:
    from collections.abc import Callable


SDK = "anthropic_sdk"
GROUPS = {
    **dict.fromkeys(
        ("test_accounting", "test_budget", "test_budget_cluster", "test_crash_kill9",
         "test_hive_routes", "test_llm_anthropic", "test_queen_anthropic",
         "test_queen_robustness", "test_session_index", "test_workers"), SDK),
    "test_fuzz_api": "fuzz",
    "test_error_codes": "source_scan",
}


def group_of(nodeid: str) -> str | None:
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return GROUPS.get(module)


class ModuleGroups(LoadScopeScheduling):
    """xdist's scope scheduling with a scope per test, or per group (the table above). The
    groups go first, the largest first (xdist's ``loadscopereorder``): they are the longest
    units; the tests outside them follow in the order collected."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid) or nodeid


def outside_the_sdk_group(items: list[pytest.Item],
                          uses_the_sdk: Callable[[pytest.Item], bool]) -> set[str]:
    """The tests that load the SDK outside the ``anthropic_sdk`` group (tests/conftest.py fails
    each with what to do: a failed test, which xdist reports, unlike an error in collection)."""
    return {item.nodeid for item in items
            if uses_the_sdk(item) and group_of(item.nodeid) != SDK}


OUTSIDE = f"uses the Anthropic SDK outside the {SDK} group: add its module to {__name__}"
