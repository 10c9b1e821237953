"""A local fake of the Anthropic Messages API (``POST /v1/messages``, streaming only).

Serve ``FakeAnthropic().app`` on 127.0.0.1 and point the SDK's ``base_url`` at it. Script the
replies in order with ``fake.script(text_turn("hi"), tool_turn([("get_time", {})]), error(529))``;
each request takes the next reply. ``fake.requests`` holds every request body received.

Requests are validated the way the real API does it, before a reply is taken from the script
(a rejected request does not consume one): a 400 ``invalid_request_error`` when an assistant
``tool_use`` is not answered by ``tool_result`` blocks for exactly those ids at the start of the
next user message, when a ``tool_result`` names an unknown id, when a ``tool_use`` id repeats
one earlier in the request, when a text block is empty, when a message has only text blocks and
all of them are whitespace (or the system prompt is), or when a block carries a field the API
does not accept.

Streams speak the real SSE sequence: ``message_start``, per block ``content_block_start`` /
``content_block_delta``... / ``content_block_stop`` (a ``ping`` after the first start),
``message_delta`` with cumulative usage, ``message_stop``. A client that goes away mid-stream is
counted in ``fake.disconnects`` and sets ``fake.disconnected``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import re
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from aiohttp import web

_ids = itertools.count(1)

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 504: "timeout_error",
               529: "overloaded_error"}
SPEND_LIMIT_CODE = "enforced_spend_limit_reached"


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    """One content block of a scripted turn: ``text``, ``tool_use`` or ``thinking``."""

    type: str
    text: str = ""
    name: str = ""
    input: dict[str, Any] = dataclasses.field(default_factory=dict)
    id: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Turn:
    """A streamed assistant turn (HTTP 200)."""

    blocks: tuple[Block, ...]
    stop_reason: str = "end_turn"
    input_tokens: int = 25
    output_tokens: int | None = None  # default: derived from the content
    error_type: str | None = None  # send an `error` event after the blocks instead of finishing
    hold: asyncio.Event | None = None  # after the first delta, wait until this is set
    drop: bool = False  # after the blocks, cut the connection without finishing the stream
    cache_read_tokens: int = 0  # usage.cache_read_input_tokens (not in input_tokens)
    cache_write_tokens: int = 0  # usage.cache_creation_input_tokens (not in input_tokens)


@dataclasses.dataclass(frozen=True, slots=True)
class HttpError:
    """A non-200 reply with the real error envelope."""

    status: int
    error_type: str
    message: str
    error_code: str | None = None
    retry_after: float | None = None


Reply = Turn | HttpError


def text_turn(text: str, *, thinking: str | None = None, stop_reason: str = "end_turn",
              input_tokens: int = 25, output_tokens: int | None = None,
              hold: asyncio.Event | None = None) -> Turn:
    """A text reply, streamed in chunks of two words; optionally preceded by a thinking block."""
    blocks = (*_thinking_block(thinking), Block("text", text=text))
    return Turn(blocks, stop_reason, input_tokens, output_tokens, hold=hold)


def tool_turn(calls: Sequence[tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], str]], *,
              text: str | None = None, thinking: str | None = None, input_tokens: int = 25,
              hold: asyncio.Event | None = None) -> Turn:
    """A turn calling one or several tools (``(name, input)`` or ``(name, input, id)``)."""
    blocks = [*_thinking_block(thinking)]
    if text:
        blocks.append(Block("text", text=text))
    for call in calls:
        tool_id = call[2] if len(call) == 3 else f"toolu_fake_{next(_ids):04d}"
        blocks.append(Block("tool_use", name=call[0], input=dict(call[1]), id=tool_id))
    return Turn(tuple(blocks), "tool_use", input_tokens, hold=hold)


def _thinking_block(thinking: str | None) -> tuple[Block, ...]:
    return (Block("thinking", text=thinking),) if thinking else ()


def stream_error(error_type: str = "overloaded_error", *, text: str = "") -> Turn:
    """HTTP 200, then (after ``text``, if any) an ``event: error`` that ends the stream."""
    blocks = (Block("text", text=text),) if text else ()
    return Turn(blocks, error_type=error_type)


def dropped(text: str) -> Turn:
    """HTTP 200, streams ``text``, then closes the connection before ``message_stop``."""
    return Turn((Block("text", text=text),), drop=True)


def error(status: int, error_type: str | None = None, message: str | None = None, *,
          error_code: str | None = None, retry_after: float | None = None) -> HttpError:
    kind = error_type or ERROR_TYPES.get(status, "api_error")
    return HttpError(status, kind, message or f"fake {kind}", error_code, retry_after)


def overloaded() -> HttpError:
    return error(529, message="Overloaded")


def rate_limited(retry_after: float | None = None) -> HttpError:
    return error(429, message="Number of request tokens has exceeded your rate limit",
                 retry_after=retry_after)


def spend_limit() -> HttpError:
    return error(429, message="You have reached your specified workspace API usage limits",
                 error_code=SPEND_LIMIT_CODE)


class FakeAnthropic:
    """The fake server's state: the script, the recorded requests, disconnects."""

    def __init__(self, *, fallback: Reply | None = None) -> None:
        self.app = web.Application()
        self.app.router.add_post("/v1/messages", self._handle)
        self.requests: list[dict[str, Any]] = []
        self.rejected: list[str] = []  # validation messages of 400s sent for invalid requests
        self.disconnects = 0
        self.disconnected = asyncio.Event()
        self.completed = 0  # streams that reached message_stop
        self._script: deque[Reply] = deque()
        self._fallback = fallback
        self._request_ids = itertools.count(1)

    def script(self, *replies: Reply) -> FakeAnthropic:
        self._script.extend(replies)
        return self

    @property
    def pending(self) -> int:
        return len(self._script)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        request_id = f"req_fake_{next(self._request_ids):04d}"
        body = await request.json()
        self.requests.append(body)
        problem = validate_request(body)
        if problem is not None:
            self.rejected.append(problem)
            return _error_response(error(400, message=problem), request_id)
        reply = self._next_reply()
        if isinstance(reply, HttpError):
            return _error_response(reply, request_id)
        return await self._stream(request, reply, body, request_id)

    def _next_reply(self) -> Reply:
        if self._script:
            return self._script.popleft()
        if self._fallback is not None:
            return self._fallback
        return error(400, message=f"FakeAnthropic: script exhausted after {len(self.requests)} "
                                  "requests")

    async def _stream(self, request: web.Request, turn: Turn, body: dict[str, Any],
                      request_id: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache",
            "request-id": request_id})
        await response.prepare(request)
        try:
            await self._write_events(response, turn, str(body.get("model", "")))
        except asyncio.CancelledError:
            self._note_disconnect()
            raise
        except ConnectionResetError:
            self._note_disconnect()
            return response
        if turn.drop:
            _cut(request)
        elif turn.error_type is None:
            self.completed += 1
        return response

    async def _write_events(self, response: web.StreamResponse, turn: Turn, model: str) -> None:
        held = False
        for name, data in sse_events(turn, model):
            await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            if name == "content_block_delta" and turn.hold is not None and not held:
                held = True
                await turn.hold.wait()

    def _note_disconnect(self) -> None:
        self.disconnects += 1
        self.disconnected.set()


def sse_events(turn: Turn, model: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The (event name, data) frames of one streamed turn, in the API's order."""
    output_tokens = turn.output_tokens or _count_output(turn)
    yield "message_start", {"type": "message_start", "message": {
        "id": f"msg_fake_{next(_ids):04d}", "type": "message", "role": "assistant",
        "model": model, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": turn.input_tokens, "output_tokens": 1,
                  "cache_read_input_tokens": turn.cache_read_tokens,
                  "cache_creation_input_tokens": turn.cache_write_tokens}}}
    for index, block in enumerate(turn.blocks):
        yield "content_block_start", {"type": "content_block_start", "index": index,
                                      "content_block": _start_block(block)}
        if index == 0:
            yield "ping", {"type": "ping"}
        for delta in _deltas(block):
            yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                          "delta": delta}
        if not turn.drop:
            yield "content_block_stop", {"type": "content_block_stop", "index": index}
    if turn.error_type is not None:
        yield "error", {"type": "error", "error": {"type": turn.error_type,
                                                   "message": f"fake mid-stream {turn.error_type}"}}
        return
    if turn.drop:
        return
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": turn.stop_reason, "stop_sequence": None},
                            "usage": {"output_tokens": output_tokens}}
    yield "message_stop", {"type": "message_stop"}


def _start_block(block: Block) -> dict[str, Any]:
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": {},
                "caller": {"type": "direct"}}
    if block.type == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {"type": "text", "text": ""}


def _deltas(block: Block) -> Iterator[dict[str, Any]]:
    if block.type == "tool_use":
        raw = json.dumps(block.input)
        step = max(1, -(-len(raw) // 3))
        for start in range(0, max(len(raw), 1), step):
            yield {"type": "input_json_delta", "partial_json": raw[start:start + step]}
    elif block.type == "thinking":
        for piece in _word_chunks(block.text):
            yield {"type": "thinking_delta", "thinking": piece}
        yield {"type": "signature_delta", "signature": f"sig_fake_{len(block.text)}"}
    else:
        for piece in _word_chunks(block.text):
            yield {"type": "text_delta", "text": piece}


def _word_chunks(text: str, words: int = 2) -> list[str]:
    pieces = re.findall(r"\s*\S+\s*", text) or ([text] if text else [])
    return ["".join(pieces[i:i + words]) for i in range(0, len(pieces), words)]


def _count_output(turn: Turn) -> int:
    words = sum(len(b.text.split()) + len(json.dumps(b.input).split()) for b in turn.blocks)
    return max(1, words)


def _error_response(reply: HttpError, request_id: str) -> web.Response:
    inner: dict[str, Any] = {"type": reply.error_type, "message": reply.message}
    if reply.error_code is not None:
        inner["details"] = {"error_code": reply.error_code}
    headers = {"request-id": request_id}
    if reply.retry_after is not None:
        headers["retry-after"] = f"{reply.retry_after:g}"
    body = {"type": "error", "error": inner, "request_id": request_id}
    return web.json_response(body, status=reply.status, headers=headers)


def _cut(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


# --- request validation, as the real API does it -------------------------------------------

_BLOCK_KEYS = {
    "text": {"type", "text", "cache_control", "citations"},
    "image": {"type", "source", "cache_control"},
    "tool_use": {"type", "id", "name", "input", "cache_control", "caller", "toolset_name"},
    "tool_result": {"type", "tool_use_id", "content", "is_error", "cache_control"},
    "thinking": {"type", "thinking", "signature"},
    "redacted_thinking": {"type", "data"},
}
_ROLE_BLOCKS = {"user": {"text", "image", "tool_result"},
                "assistant": {"text", "tool_use", "thinking", "redacted_thinking"}}


def validate_request(body: Any) -> str | None:
    """The message of the 400 the real API would send for ``body``, or None if it is valid."""
    if not isinstance(body, dict):
        return "body: Input should be an object"
    for field, kind in (("model", str), ("max_tokens", int), ("messages", list)):
        if not isinstance(body.get(field), kind):
            return f"{field}: Field required"
    if not body["messages"]:
        return "messages: at least one message is required"
    if isinstance(body.get("system"), str) and not body["system"].strip():
        return "system: text content blocks must contain non-whitespace text"
    for index, message in enumerate(body["messages"]):
        problem = _check_message(index, message)
        if problem is not None:
            return problem
    return _check_tool_pairing(body["messages"])


def _check_message(index: int, message: Any) -> str | None:
    where = f"messages.{index}"
    if not isinstance(message, dict) or message.get("role") not in _ROLE_BLOCKS:
        return f"{where}: role must be 'user' or 'assistant'"
    content = message.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        return f"{where}.content: Input should be a non-empty string or list"
    for position, block in enumerate(content):
        problem = _check_block(f"{where}.content.{position}", message["role"], block)
        if problem is not None:
            return problem
    if all(b["type"] == "text" and not b["text"].strip() for b in content):
        return "messages: text content blocks must contain non-whitespace text"
    return None


def _check_block(where: str, role: str, block: Any) -> str | None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in _ROLE_BLOCKS[role]:
        return f"{where}: block type {kind!r} is not allowed in a {role} message"
    extra = set(block) - _BLOCK_KEYS[kind]
    if extra:
        return f"{where}.{sorted(extra)[0]}: Extra inputs are not permitted"
    if kind == "text" and not block.get("text"):
        return f"{where}: text content blocks must be non-empty"
    if kind == "tool_use" and not (isinstance(block.get("id"), str)
                                   and isinstance(block.get("name"), str)
                                   and isinstance(block.get("input"), dict)):
        return f"{where}: tool_use blocks need a string id and name and an object input"
    return None


def _check_tool_pairing(messages: list[dict[str, Any]]) -> str | None:
    expected: list[str] = []
    seen: set[str] = set()
    for index, message in enumerate(messages):
        blocks = message["content"] if isinstance(message["content"], list) else []
        results = _leading_results(blocks)
        if message["role"] == "user":
            problem = _check_results(index, blocks, results, expected)
            if problem is not None:
                return problem
            expected = []
        else:
            if expected:
                return _missing(index - 1, expected)
            expected = [b["id"] for b in blocks if b["type"] == "tool_use"]
            if seen.intersection(expected) or len(set(expected)) != len(expected):
                return f"messages.{index}: `tool_use` ids must be unique"
            seen.update(expected)
    return _missing(len(messages) - 1, expected) if expected else None


def _leading_results(blocks: list[dict[str, Any]]) -> list[str]:
    results = []
    for block in blocks:
        if block["type"] != "tool_result":
            break
        results.append(block.get("tool_use_id"))
    return results


def _check_results(index: int, blocks: list[dict[str, Any]], results: list[str],
                   expected: list[str]) -> str | None:
    if sum(b["type"] == "tool_result" for b in blocks) != len(results):
        return (f"messages.{index}: tool_result blocks must come FIRST in the content array; "
                "any text must come after all tool results")
    unknown = [r for r in results if r not in expected]
    if unknown:
        return (f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` "
                f"blocks: {unknown[0]}. Each `tool_result` block must have a corresponding "
                "`tool_use` block in the previous message.")
    if len(set(results)) != len(results):
        return f"messages.{index}.content: duplicate `tool_use_id` in `tool_result` blocks"
    missing = [e for e in expected if e not in results]
    return _missing(index - 1, missing) if missing else None


def _missing(index: int, ids: list[str]) -> str:
    return (f"messages.{index}: `tool_use` ids were found without `tool_result` blocks "
            f"immediately after: {', '.join(ids)}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message.")
