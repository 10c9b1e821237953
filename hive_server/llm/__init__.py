"""LLM clients: the protocol (``base``), the Anthropic client and the offline model."""

from hive_server.llm.anthropic import DEFAULT_MODEL, AnthropicClient
from hive_server.llm.base import LLMClient, LLMError, TextDelta, ToolSpec, TurnResult, Usage
from hive_server.llm.offline import OfflineClient

__all__ = ["DEFAULT_MODEL", "AnthropicClient", "LLMClient", "LLMError", "OfflineClient",
           "TextDelta", "ToolSpec", "TurnResult", "Usage", "make_llm"]


def make_llm(api_key: str | None, base_url: str | None = None,
             model: str | None = None) -> LLMClient:
    """The Anthropic client when a key is given, else the offline model (which ignores
    ``model``: it always reports itself as ``offline-1``). Whitespace around the key (a CRLF
    env file) is dropped: in a header it fails every request as a "connection error"."""
    api_key = (api_key or "").strip()
    if api_key:
        return AnthropicClient(api_key, base_url=base_url, default_model=model or DEFAULT_MODEL)
    return OfflineClient()
