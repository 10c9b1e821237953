"""tests/worker_groups.py: a group's modules are one unit of work, every other test its own, and
a test that imports the SDK outside the SDK group is found (tests/conftest.py fails it)."""

from __future__ import annotations

import dataclasses

from tests.worker_groups import GROUPS, SDK, ModuleGroups, group_of, outside_the_sdk_group


@dataclasses.dataclass
class Collected:  # what outside_the_sdk_group reads of a pytest item
    nodeid: str
    sdk: bool = False


def scope(nodeid: str) -> str:
    return ModuleGroups._split_scope(object.__new__(ModuleGroups), nodeid)


def test_the_tests_of_a_grouped_module_share_one_scope_and_others_have_their_own():
    assert scope("tests/test_fuzz_api.py::test_no_5xx[GET /api/health]") == "fuzz"
    assert scope("tests/test_llm_anthropic.py::test_retries[429]") == SDK
    assert scope("tests/test_budget.py::test_one") == scope("tests/test_accounting.py::t") == SDK
    assert scope("tests/test_sse.py::test_a") == "tests/test_sse.py::test_a"
    assert scope("tests/test_sse.py::test_b") == "tests/test_sse.py::test_b"
    assert group_of("tests/test_fuzz_api_extra.py::t") is None  # a module, not a prefix
    assert set(GROUPS.values()) == {SDK, "fuzz", "source_scan"}


def test_a_test_using_the_sdk_outside_its_group_is_found():
    inside = Collected("tests/test_queen_anthropic.py::test_a", sdk=True)
    elsewhere = Collected("tests/test_sse.py::test_stream", sdk=True)
    offline = Collected("tests/test_sse.py::test_b")
    assert outside_the_sdk_group([inside, offline], lambda item: item.sdk) == set()
    assert outside_the_sdk_group([inside, elsewhere, offline],
                                 lambda item: item.sdk) == {"tests/test_sse.py::test_stream"}
