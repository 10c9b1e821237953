"""The Anthropic Messages API client: streaming, tool use, our own retries, prompt cancellation.

The only module that imports the ``anthropic`` SDK. The SDK's own retries are off
(``max_retries=0``); ``stream_turn`` retries by itself so that a mid-stream ``error`` event is
classified by its type, a spend-limit 429 is never retried, and nothing is retried once text has
reached the consumer.

Retried, with exponential backoff (``backoff_base * 2**attempt``, capped at ``backoff_max``, up
to 25% jitter subtracted; a ``retry-after-ms`` / ``retry-after`` header of at most 60 s wins):
HTTP 408, 409, 429 and 5xx (529 included), connection errors and streams cut short, and
mid-stream ``error`` events of a transient type (``overloaded_error``, ``api_error``, ...), all
only while no text delta was yielded. An ``x-should-retry`` header overrides the status rule.

The HTTP stream lives inside ``async with``, so it is closed when the consuming task is
cancelled while waiting for the next item, or when the consumer closes the generator (consume it
with ``contextlib.aclosing`` when you may stop early).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import anthropic
import httpx2
from anthropic.types import ContentBlock, Message

from hive_server.llm.base import LLMError, StreamItem, TextDelta, ToolSpec, TurnResult, Usage

log = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-sonnet-5-5"
SPEND_LIMIT_CODE = "enforced_spend_limit_reached"
MAX_RETRY_AFTER = 60.0
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error",
                              "timeout_error", "gateway_timeout_error"})
_SDK_FAILURES = (anthropic.APIError, httpx2.TransportError, ValueError)


class _StreamEndedEarly(Exception):
    """The HTTP stream ended before ``message_stop``."""


class AnthropicClient:
    """``LLMClient`` over the official SDK's streaming Messages API."""

    provider = "anthropic"

    def __init__(self, api_key: str, *, base_url: str | None = None,
                 default_model: str = DEFAULT_MODEL, max_retries: int = 4,
                 backoff_base: float = 0.5, backoff_max: float = 8.0,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.default_model = default_model
        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url,
                                                max_retries=0)
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._sleep = sleep

    async def stream_turn(self, *, system: str, messages: list[dict[str, Any]],
                          tools: list[ToolSpec], model: str | None = None,
                          max_tokens: int = 4096) -> AsyncIterator[StreamItem]:
        request = self._request(system, messages, tools, model, max_tokens)
        attempt = 0
        while True:
            sent_text = False
            try:
                async for item in self._attempt(request):
                    sent_text = sent_text or isinstance(item, TextDelta)
                    yield item
                return
            except (*_SDK_FAILURES, _StreamEndedEarly) as exc:
                error, retry_after = classify(exc)
                if sent_text or not error.retryable or attempt >= self._max_retries:
                    raise error from exc
                delay = self._delay(attempt, retry_after)
                log.warning("anthropic %s (%s); retry %d/%d in %.2fs", error.error_type, error,
                            attempt + 1, self._max_retries, delay)
            await self._sleep(delay)
            attempt += 1

    async def aclose(self) -> None:
        await self._client.close()

    def _request(self, system: str, messages: list[dict[str, Any]], tools: list[ToolSpec],
                 model: str | None, max_tokens: int) -> dict[str, Any]:
        request: dict[str, Any] = {"model": model or self.default_model,
                                   "max_tokens": max_tokens, "messages": messages}
        if system.strip():  # the API refuses a whitespace-only system prompt
            request["system"] = system
        if tools:
            request["tools"] = [tool.to_api() for tool in tools]
        return request

    async def _attempt(self, request: dict[str, Any]) -> AsyncIterator[StreamItem]:
        async with self._client.messages.stream(**request) as stream:
            finished = False
            async for event in stream:
                if event.type == "text" and event.text:
                    yield TextDelta(event.text)
                elif event.type == "message_stop":
                    finished = True
            if not finished:
                raise _StreamEndedEarly("the stream ended before message_stop")
            message = stream.current_message_snapshot
        yield turn_result(message)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None and 0 < retry_after <= MAX_RETRY_AFTER:
            return retry_after
        delay = min(self._backoff_base * 2**attempt, self._backoff_max)
        return delay * (1 - 0.25 * random.random())


def turn_result(message: Message) -> TurnResult:
    """The final message as plain dicts the API accepts back (SDK-only fields dropped)."""
    content = [block for b in message.content if (block := _block_dict(b)) is not None]
    usage = message.usage
    cached, created = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
    return TurnResult(content=content, stop_reason=message.stop_reason,
                      usage=Usage(usage.input_tokens + cached + created, usage.output_tokens,
                                  cached, created), model=message.model)


def _block_dict(block: ContentBlock) -> dict[str, Any] | None:
    if block.type == "text":
        return {"type": "text", "text": block.text} if block.text else None
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name,
                "input": dict(block.input)}
    if block.type == "thinking":
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if block.type == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.data}
    return None


def classify(exc: BaseException) -> tuple[LLMError, float | None]:
    """Our ``LLMError`` for an SDK or transport failure, and the server's retry-after hint."""
    if isinstance(exc, anthropic.APIStatusError):
        return _status_error(exc), _retry_after(exc.response.headers)
    if isinstance(exc, anthropic.APITimeoutError):
        return LLMError(str(exc), error_type="timeout_error", retryable=True), None
    if isinstance(exc, (anthropic.APIConnectionError, httpx2.TransportError, _StreamEndedEarly)):
        message = f"connection lost: {exc}" if str(exc) else "connection lost"
        return LLMError(message, error_type="connection_error", retryable=True), None
    return LLMError(f"invalid response: {exc}", error_type="invalid_response"), None


def _status_error(exc: anthropic.APIStatusError) -> LLMError:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    error_type = str(error.get("type") or "api_error")
    message = str(error.get("message") or exc.message)
    details = error.get("details") if isinstance(error.get("details"), dict) else {}
    mid_stream = exc.status_code == 200
    if details.get("error_code") == SPEND_LIMIT_CODE:
        retryable = False
        message = f"{message} ({SPEND_LIMIT_CODE})"
    elif mid_stream:
        retryable = error_type in _RETRYABLE_TYPES
        message = f"stream error: {message}"
    else:
        retryable = _status_retryable(exc.status_code, exc.response.headers)
    return LLMError(message, error_type=error_type, status=None if mid_stream else exc.status_code,
                    retryable=retryable)


def _status_retryable(status: int, headers: Mapping[str, str]) -> bool:
    should_retry = headers.get("x-should-retry")
    if should_retry in ("true", "false"):
        return should_retry == "true"
    return status in _RETRYABLE_STATUS or status >= 500


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return None if parsed is None else email.utils.mktime_tz(parsed) - time.time()
