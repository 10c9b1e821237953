"""``GET /api/config/llm``: the model in use, in the shape Hive's UI gates on."""

from __future__ import annotations

import inspect

from aiohttp import web

from hive_server import keys
from hive_server.llm.base import LLMClient
from hive_server.models.responses import LlmConfig, ModelList, ModelOption
from hive_server.services.runtime.agent_loop import CONTEXT_CHARS
from hive_server.settings import Settings
from hive_server.web.body import json_response
from hive_server.web.openapi import doc

routes = web.RouteTableDef()
CHARS_PER_TOKEN = 4  # CONTEXT_CHARS is a character budget; about 4 characters a token


@routes.get("/api/config/llm")
@doc(response=LlmConfig)
async def llm_config(request: web.Request) -> web.Response:
    """The provider and model every session uses (the offline model counts: it answers)."""
    return json_response(llm_config_view(request.app[keys.LLM], request.app[keys.SETTINGS]))


def llm_config_view(llm: LLMClient, settings: Settings) -> LlmConfig:
    anthropic = llm.provider == "anthropic"
    return LlmConfig(
        provider=llm.provider,
        model=llm.default_model,  # --model is already in it (the offline model ignores it)
        has_api_key=True,  # a model answers: Anthropic with its key, or the offline model
        max_tokens=_max_tokens(llm),
        max_context_tokens=CONTEXT_CHARS // CHARS_PER_TOKEN,
        connected_providers=[llm.provider],
        active_subscription=None,
        detected_subscriptions=[],
        subscriptions=[],
        api_base=settings.anthropic_base_url if anthropic else None,
        api_key_env_var="ANTHROPIC_API_KEY" if anthropic else None,
    )


@routes.get("/api/config/models")
@doc(response=ModelList)
async def llm_models(request: web.Request) -> web.Response:
    """The models this server can use, by provider (Hive's model picker): the one in use."""
    config = llm_config_view(request.app[keys.LLM], request.app[keys.SETTINGS])
    option = ModelOption(id=config.model, label=config.model, recommended=True,
                         max_tokens=config.max_tokens,
                         max_context_tokens=config.max_context_tokens)
    return json_response(ModelList(models={config.provider: [option]}))


def _max_tokens(llm: LLMClient) -> int | None:
    """The output limit of a turn: the client's own default (sessions never override it)."""
    default = inspect.signature(llm.stream_turn).parameters.get("max_tokens")
    if default is None or not isinstance(default.default, int):
        return None
    return default.default
