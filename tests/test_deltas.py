"""Text deltas are coalesced: a long reply does not write one log line per token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from hive_server.llm.base import StreamItem, TextDelta, ToolSpec, TurnResult, Usage
from tests.conftest import create_session
from tests.queen_support import chat, of_type, open_stream, until

TOKENS = [f"tok{i} " for i in range(400)]


class ManyTokens:
    """An LLM fake that streams its reply one small token at a time, with no time passing."""

    provider = "fake"
    default_model = "fake-1"

    async def stream_turn(self, *, system: str, messages: list[dict[str, Any]],
                          tools: list[ToolSpec], model: str | None = None,
                          max_tokens: int = 4096) -> AsyncIterator[StreamItem]:
        for token in TOKENS:
            yield TextDelta(token)
        yield TurnResult([{"type": "text", "text": "".join(TOKENS)}], "end_turn",
                         Usage(1, len(TOKENS)), self.default_model)

    async def aclose(self) -> None:
        return None


async def test_token_stream_is_coalesced_without_losing_text(make_client, settings):
    client = await make_client(settings, llm=ManyTokens())
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    await chat(client, "s", "talk a lot")
    events = await until(stream, "execution_completed")
    deltas = of_type(events, "client_output_delta")
    reply = "".join(TOKENS)
    assert 1 < len(deltas) < len(TOKENS) / 10
    assert "".join(d["data"]["content"] for d in deltas) == reply
    assert deltas[-1]["data"]["snapshot"] == reply
    assert deltas[0]["data"]["content"] == TOKENS[0]  # the first token is not held back
    stream.close()
