"""Token and cost accounting per model, with prices from a YAML table.

Prices file: `{model: {input_per_mtok: float, output_per_mtok: float}}` (US$ per million tokens).
A model missing from the table is counted in tokens with cost None (never guessed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reward_fns.judge.tally import Prices, TokenCounts

PRICE_KEYS = ("input_per_mtok", "output_per_mtok")  # in the order of Prices' fields


def load_prices(path: str | Path | None) -> dict[str, Prices]:
    """Read the YAML price table; a malformed entry is an error naming the model and key."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the price table: {exc}") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping {{model: {{input_per_mtok, output_per_mtok}}}}")
    prices: dict[str, Prices] = {}
    for model, entry in data.items():
        if not isinstance(entry, Mapping) or set(entry) != set(PRICE_KEYS):
            raise ValueError(f"{path}: model {model!r}: expected exactly the keys {list(PRICE_KEYS)}")
        values = [entry[k] for k in PRICE_KEYS]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                   for v in values):
            raise ValueError(f"{path}: model {model!r}: prices must be finite numbers >= 0, got {dict(entry)}")
        prices[str(model)] = Prices(*(float(v) for v in values))
    return prices


@dataclass
class ModelUsage(TokenCounts):
    """What one model was asked for: requests, HTTP calls, cache hits, billed tokens and the tokens
    the cache saved."""

    http_calls: int = 0
    unreadable_replies: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0


@dataclass
class Ledger:
    """Usage per model name, priced on demand."""

    prices: Mapping[str, Prices] = field(default_factory=dict)
    models: dict[str, ModelUsage] = field(default_factory=dict)

    def usage(self, model: str) -> ModelUsage:
        return self.models.setdefault(model, ModelUsage())

    def summary(self) -> dict[str, Any]:
        """Per model: counters, cost (US$, None without a price) and cost saved by the cache."""
        out: dict[str, Any] = {}
        for model, use in sorted(self.models.items()):
            price = self.prices.get(model)
            out[model] = {
                **use.__dict__,
                "cost_usd": use.cost(price) if price else None,
                "saved_by_cache_usd": (price.cost(use.cached_prompt_tokens, use.cached_completion_tokens)
                                       if price else None),
            }
        costs = [m["cost_usd"] for m in out.values()]
        total = sum(costs) if costs and all(c is not None for c in costs) else None
        return {"models": out, "total_cost_usd": total}
