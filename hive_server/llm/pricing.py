"""Estimated cost of a model turn in USD, from list prices per million tokens.

The one price table of the server. Prices go by model family (the longest matching id prefix);
a model with no entry has no cost (``None``), never a guessed one. The offline model costs 0.
Cache reads are billed at 10% and cache writes at 125% of the input price (5-minute cache).
"""

from __future__ import annotations

from hive_server.llm.base import Usage

PRICES: dict[str, tuple[float, float]] = {
    # id prefix: (input, output) USD per million tokens
    "offline": (0.0, 0.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-opus-4": (15.0, 75.0),
    "claude-sonnet-4": (3.0, 15.0),
    "claude-sonnet-5": (3.0, 15.0),
    "claude-3-7-sonnet": (3.0, 15.0),
    "claude-3-5-sonnet": (3.0, 15.0),
    "claude-haiku-4": (1.0, 5.0),
    "claude-3-5-haiku": (0.8, 4.0),
    "claude-3-opus": (15.0, 75.0),
    "claude-3-haiku": (0.25, 1.25),
}
CACHE_READ = 0.1
CACHE_WRITE = 1.25


def price_of(model: str) -> tuple[float, float] | None:
    matches = [prefix for prefix in PRICES if model.startswith(prefix)]
    return PRICES[max(matches, key=len)] if matches else None


def cost_usd(model: str, usage: Usage) -> float | None:
    """The turn's cost, or None when the model has no price."""
    price = price_of(model)
    if price is None:
        return None
    per_in, per_out = price[0] / 1e6, price[1] / 1e6
    plain = max(0, usage.input_tokens - usage.cached_tokens - usage.cache_creation_tokens)
    cost = (plain * per_in + usage.cached_tokens * per_in * CACHE_READ
            + usage.cache_creation_tokens * per_in * CACHE_WRITE
            + usage.output_tokens * per_out)
    return round(cost, 8)
