"""tests/worker_groups.py: a group's modules are one unit of work, every other test its own, and
a test that imports the SDK outside the SDK group fails the run instead of costing a worker."""

from __future__ import annotations

import dataclasses

import pytest

from tests.worker_groups import GROUPS, SDK, ModuleGroups, check_groups, group_of


@dataclasses.dataclass
class Collected:  # what check_groups reads of a pytest item
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


def test_a_test_using_the_sdk_outside_its_group_fails_the_run():
    inside = Collected("tests/test_queen_anthropic.py::test_a", sdk=True)
    elsewhere = Collected("tests/test_sse.py::test_stream", sdk=True)
    check_groups([inside, Collected("tests/test_sse.py::test_b")],
                 lambda item: item.sdk)
    with pytest.raises(pytest.UsageError, match=r"test_sse\.py::test_stream"):
        check_groups([inside, elsewhere], lambda item: item.sdk)
