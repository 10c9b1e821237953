"""Every error code the server answers is carried by a named ``HiveError`` subclass (no raise
site spells a code) and is listed in docs/api.md's error table, in the row of its status."""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
import re
from pathlib import Path

import hive_server.app  # noqa: F401  (imports the server's modules)
from hive_server import errors
from hive_server.errors.backend import (
    FeedUnavailable,
    RedisDurabilityRefused,
    RedisUnreachable,
)
from hive_server.errors.transfer import BadImportLine, HomeInUse, IncompleteImport, SessionExists
from hive_server.errors.triggers import DuplicateDelivery, NotSerialisable, WebhookInboxFull
from hive_server.services.tools.base import AgentLoadError
from hive_server.web.errors import HTTP_CODES, status_for

ROOT = Path(__file__).resolve().parent.parent
# every errors module, also those the app does not import (the CLI's, the Redis backend's), so
# the classes found do not depend on what other tests of this process imported
for _module in pkgutil.iter_modules(errors.__path__):
    importlib.import_module(f"{errors.__name__}.{_module.name}")
API_MD = ROOT / "docs" / "api.md"
SOURCES = sorted((ROOT / "hive_server").rglob("*.py"))

# raised, but never the answer to a request: each says why
CLI_ONLY = "export-session / import-session: printed, exit code 2, never an HTTP answer"
AT_START = "--redis at start: one line and exit code 2, never an HTTP answer"
NOT_ROUTED = "the Redis backend: no route uses it yet (docs/scale-out.md); document it then"
NOT_ANSWERED: dict[type[errors.HiveError], str] = {
    BadImportLine: CLI_ONLY, IncompleteImport: CLI_ONLY, HomeInUse: CLI_ONLY,
    SessionExists: CLI_ONLY, RedisUnreachable: AT_START, RedisDurabilityRefused: AT_START,
    FeedUnavailable: NOT_ROUTED,
    AgentLoadError: "the catalog catches it and lists the agent with the error",
    WebhookInboxFull: "the ingress catches it and answers 503 inbox_unavailable",
    DuplicateDelivery: "a webhook_rejected reason: the delivery is answered 200",
    NotSerialisable: "a delivery is parsed JSON or text, always serialisable",
}


@functools.cache
def _trees() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path))) for path in SOURCES]


def _called_name(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in _nodes(tree) if isinstance(node, ast.Call)]


@functools.cache  # a node hashes by identity; _trees() keeps the trees, so once per file
def _nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` (the tests look at each file three times)."""
    return list(ast.walk(tree))


def literal_codes(tree: ast.AST) -> list[int]:
    """Lines of error constructions that pass ``code=`` (a raise site spelling its code)."""
    names = _error_names()
    return [call.lineno for call in _calls(tree) if _called_name(call) in names
            and any(k.arg == "code" for k in call.keywords)]


@functools.cache
def _error_names() -> frozenset[str]:
    return frozenset(cls.__name__ for cls in _subclasses(errors.HiveError))


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def _used_names(tree: ast.AST) -> set[str | None]:
    """Names called, or handed over as a value (an argument, a parameter's default); a class
    only caught (``suppress(NotFound)``) is not raised."""
    values: list[ast.expr] = []
    for node in _nodes(tree):
        if isinstance(node, ast.Call) and _called_name(node) not in ("suppress", "isinstance"):
            values += [*node.args, *(k.value for k in node.keywords)]
        elif isinstance(node, ast.arguments):
            values += [*node.defaults, *(d for d in node.kw_defaults if d is not None)]
    return ({_called_name(call) for call in _calls(tree)}
            | {value.id for value in values if isinstance(value, ast.Name)})


@functools.cache
def _raised_classes() -> list[type[errors.HiveError]]:
    """The error classes some module of the server constructs (or hands to a constructor)."""
    used = set().union(*(_used_names(tree) for _, tree in _trees()))
    return [cls for cls in _subclasses(errors.HiveError) if cls.__name__ in used]


def _direct_answers() -> set[tuple[int, str]]:
    """(status, code) of the answers built without an error class: aiohttp's HTTP errors and
    the literal ``error_response(status, message, code)`` calls."""
    answers = set(HTTP_CODES.items())
    for _, tree in _trees():
        for call in _calls(tree):
            args = call.args
            if _called_name(call) == "error_response" and len(args) == 3 and all(
                    isinstance(arg, ast.Constant) for arg in (args[0], args[2])):
                answers.add((args[0].value, args[2].value))
    return answers


def _documented() -> dict[int, set[str]]:
    """docs/api.md's error table: status -> the codes in its row."""
    rows = re.findall(r"^\| (\d{3}) \| (.*) \|$", API_MD.read_text(), re.MULTILINE)
    return {int(status): set(re.findall(r"`([a-z_]+)`", codes)) for status, codes in rows}


def test_no_call_in_the_server_spells_an_error_code() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}" for path, tree in _trees()
             for line in literal_codes(tree)]
    assert found == [], "raise a named error (hive_server/errors/) instead of code=..."


def test_the_scan_finds_a_spelled_code() -> None:
    tree = ast.parse('raise NotFound("gone",\n    code="gone")\nraise AgentNotFound("a")\n')
    assert literal_codes(tree) == [1]


def test_every_named_error_is_raised_somewhere() -> None:
    named = [cls for cls in _subclasses(errors.HiveError)
             if cls.__module__.startswith("hive_server.errors.")]
    assert len(named) > 40
    raised = set(_raised_classes())
    assert [cls.__name__ for cls in named if cls not in raised] == []


def test_every_answered_code_is_in_the_api_doc_under_its_status() -> None:
    answered = {(status_for(cls.__new__(cls)), cls.code)  # the status depends on the class only
                for cls in _raised_classes() if cls not in NOT_ANSWERED}
    answered |= _direct_answers()
    assert len(answered) > 50
    documented = _documented()
    missing = sorted((status, code) for status, code in answered
                     if code not in documented.get(status, set()))
    assert missing == [], "add each to the error table of docs/api.md with its meaning"


def test_the_exemptions_name_raised_classes() -> None:
    assert set(NOT_ANSWERED) <= set(_raised_classes())

