"""Model prices: what a request costs, per provider and model, for the presets we ship.

Prices are US dollars per million tokens, in three parts, because providers bill them apart:
prompt tokens the prefix cache did not serve (``input``), prompt tokens it served
(``cached_input``: DeepSeek's "cache hit", OpenAI's "cached input") and completion tokens,
reasoning included (``output``). They are list prices as published when checked (see
``PRICES_CHECKED``); discounts and price changes are the user's to set in settings:

    [pricing."deepseek-v4-pro"]          # one model (any provider)
    input = 0.435
    cached_input = 0.003625
    output = 0.87

    [pricing."*"]                        # every model without its own entry (a paid local host)
    input = 0.5
    cached_input = 0.5
    output = 1.5

A model with no settings entry and no preset price (``local`` servers, a model name we do not
list) has no price: callers say "cost unknown" rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lsp_agent.config import Settings

PRICES_CHECKED = "2026-11"  # when the preset figures below were last compared with the rate cards
ANY_MODEL = "*"  # settings key that prices every model without its own entry
PRICE_FIELDS = ("input", "cached_input", "output")


@dataclass(frozen=True)
class Price:
    input: float  # USD per million prompt tokens not served from the prefix cache
    cached_input: float  # USD per million prompt tokens served from the prefix cache
    output: float  # USD per million completion tokens (reasoning tokens included)
    source: str = "preset"  # "preset" | "settings": said next to any figure shown

    def cost(
        self, *, prompt_tokens: int, cached_tokens: int = 0, completion_tokens: int = 0
    ) -> float:
        """Dollars for these token counts; ``cached_tokens`` is the part of ``prompt_tokens``
        the cache served (clamped to it)."""
        cached = min(max(cached_tokens, 0), max(prompt_tokens, 0))
        uncached = max(prompt_tokens, 0) - cached
        return (
            uncached * self.input + cached * self.cached_input + completion_tokens * self.output
        ) / 1_000_000

    def cost_of(self, usage: Any) -> float:
        """Dollars for a ``Usage`` (or anything with its three token counts)."""
        return self.cost(
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0)),
            cached_tokens=int(getattr(usage, "cached_tokens", 0)),
            completion_tokens=int(getattr(usage, "completion_tokens", 0)),
        )

    @property
    def cached_weight(self) -> float:
        """What a cached prompt token costs relative to an uncached one (1.0 when input is
        free or no cheaper): the rate a token budget may count cached tokens at."""
        if self.input <= 0:
            return 1.0
        return min(1.0, self.cached_input / self.input)


# provider -> model -> price. Sources, checked PRICES_CHECKED: api-docs.deepseek.com "Models &
# Pricing" (V4 list prices, after the cache-hit price cut); platform.moonshot.ai pricing for
# kimi-k2.6; openai.com/api/pricing for gpt-4.1 and gpt-4.1-mini.
PRESET_PRICES: Mapping[str, Mapping[str, Price]] = {
    "deepseek": {
        "deepseek-v4-flash": Price(input=0.14, cached_input=0.0028, output=0.28),
        "deepseek-v4-pro": Price(input=1.74, cached_input=0.0145, output=3.48),
    },
    "moonshot": {
        "kimi-k2.6": Price(input=0.95, cached_input=0.16, output=4.00),
    },
    "openai": {
        "gpt-4.1": Price(input=2.00, cached_input=0.50, output=8.00),
        "gpt-4.1-mini": Price(input=0.40, cached_input=0.10, output=1.60),
    },
}


def validate_pricing(pricing: Mapping[str, Any]) -> None:
    """ValueError naming the entry when the ``pricing`` setting is not model -> three prices."""
    for model, entry in pricing.items():
        where = f"pricing.{model!r}" if model != ANY_MODEL else "pricing.'*'"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} must be a table with {', '.join(PRICE_FIELDS)}")
        unknown = sorted(set(entry) - set(PRICE_FIELDS))
        if unknown:
            raise ValueError(
                f"{where} has unknown keys {unknown}; the keys are {', '.join(PRICE_FIELDS)}"
            )
        missing = [name for name in PRICE_FIELDS if name not in entry]
        if missing:
            raise ValueError(f"{where} is missing {', '.join(missing)} (USD per million tokens)")
        for name in PRICE_FIELDS:
            value = entry[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{where}.{name} must be a number >= 0, got {value!r}")


def _from_settings(entry: Mapping[str, Any]) -> Price:
    return Price(
        input=float(entry["input"]),
        cached_input=float(entry["cached_input"]),
        output=float(entry["output"]),
        source="settings",
    )


def price_for(settings: Settings, provider: str, model: str) -> Price | None:
    """The price of ``model`` at ``provider``: settings first (the model's own entry, then
    ``"*"``), then the preset; None when nothing prices it."""
    pricing = settings.pricing
    if model and model in pricing:
        return _from_settings(pricing[model])
    if ANY_MODEL in pricing:
        return _from_settings(pricing[ANY_MODEL])
    return PRESET_PRICES.get(provider, {}).get(model)
