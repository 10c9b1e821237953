"""Which model client a server runs: Claude when an API key is given, else the offline model.

The Anthropic SDK takes about 2.5 s to import, so ``llm.anthropic`` is imported here only when
a key asks for it (by name, through ``importlib``): a server on the offline model, and every
test server, starts without it.
"""

from __future__ import annotations

import importlib

from hive_server.llm.base import LLMClient
from hive_server.llm.offline import OfflineClient

ANTHROPIC_MODULE = "hive_server.llm.anthropic"


def make_llm(api_key: str | None, base_url: str | None = None,
             model: str | None = None) -> LLMClient:
    """The Anthropic client when a key is given, else the offline model (which ignores
    ``model``: it always reports itself as ``offline-1``). Whitespace around the key (a CRLF
    env file) is dropped: in a header it fails every request as a "connection error"."""
    api_key = (api_key or "").strip()
    if not api_key:
        return OfflineClient()
    anthropic = importlib.import_module(ANTHROPIC_MODULE)
    client: LLMClient = anthropic.AnthropicClient(
        api_key, base_url=base_url, default_model=model or anthropic.DEFAULT_MODEL)
    return client
