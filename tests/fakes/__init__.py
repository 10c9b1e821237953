"""Test fakes: a local Anthropic Messages API server (see ``fake_anthropic``)."""

from tests.fakes.fake_anthropic import (
    Block,
    FakeAnthropic,
    HttpError,
    Reply,
    Turn,
    dropped,
    error,
    overloaded,
    rate_limited,
    spend_limit,
    stream_error,
    text_turn,
    tool_turn,
    validate_request,
)

__all__ = ["Block", "FakeAnthropic", "HttpError", "Reply", "Turn", "dropped", "error",
           "overloaded", "rate_limited", "spend_limit", "stream_error", "text_turn", "tool_turn",
           "validate_request"]
