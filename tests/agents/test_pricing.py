"""Model prices: presets for every shipped provider's default models, settings override them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsp_agent.agents.pricing import PRESET_PRICES, Price, price_for
from lsp_agent.agents.providers import PRESETS
from lsp_agent.agents.usage import Usage
from lsp_agent.config import Settings, load_settings, merge_settings


@pytest.mark.parametrize("provider", ["deepseek", "moonshot", "openai"])
def test_every_default_model_of_a_paid_preset_has_a_price(provider: str) -> None:
    for role, model in PRESETS[provider].models.items():
        price = price_for(Settings(), provider, model)
        assert price is not None, f"{provider} {role} model {model} has no price"
        assert 0 <= price.cached_input <= price.input
        assert price.output > 0


def test_local_and_unknown_models_have_no_price() -> None:
    assert price_for(Settings(), "local", "qwen3-coder") is None
    assert price_for(Settings(), "openai", "gpt-9-imaginary") is None
    # a price is per provider: the same name under another provider is not guessed
    assert price_for(Settings(), "local", "deepseek-v4-pro") is None


def test_cost_splits_cached_and_uncached_prompt_tokens() -> None:
    price = Price(input=2.0, cached_input=0.5, output=8.0)
    # 1M prompt tokens of which 600k cached, 100k completion
    cost = price.cost(prompt_tokens=1_000_000, cached_tokens=600_000, completion_tokens=100_000)
    assert cost == pytest.approx(0.4 * 2.0 + 0.6 * 0.5 + 0.1 * 8.0)
    # more cached than prompt (a provider rounding up): clamped, never negative input
    assert price.cost(prompt_tokens=100, cached_tokens=500) == pytest.approx(100 * 0.5 / 1e6)
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=100_000, cached_tokens=600_000)
    assert price.cost_of(usage) == pytest.approx(cost)
    assert price.cached_weight == pytest.approx(0.25)
    assert Price(input=0, cached_input=0, output=0).cached_weight == 1.0


def test_deepseek_cache_makes_the_prefix_nearly_free() -> None:
    flash = PRESET_PRICES["deepseek"]["deepseek-v4-flash"]
    assert flash.cached_weight < 0.1


def test_settings_override_one_model_and_the_wildcard(tmp_path: Path) -> None:
    (tmp_path / ".lsp-agent.toml").write_text(
        '[pricing."deepseek-v4-pro"]\ninput = 0.435\ncached_input = 0.003625\noutput = 0.87\n'
        '[pricing."*"]\ninput = 1\ncached_input = 1\noutput = 2\n',
        encoding="utf-8",
    )
    settings, warnings = load_settings(tmp_path, env={})
    assert warnings == []
    pro = price_for(settings, "deepseek", "deepseek-v4-pro")
    assert pro == Price(input=0.435, cached_input=0.003625, output=0.87, source="settings")
    # the wildcard prices what has no entry of its own, presets included
    assert price_for(settings, "local", "qwen3-coder") == Price(1.0, 1.0, 2.0, "settings")
    assert price_for(settings, "deepseek", "deepseek-v4-flash").source == "settings"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"input": 1, "output": 2}, "missing cached_input"),
        ({"input": 1, "cached_input": 1, "output": -2}, "output must be a number >= 0"),
        ({"input": "cheap", "cached_input": 1, "output": 2}, "input must be a number"),
        ({"input": 1, "cached_input": 1, "output": 2, "outptu": 3}, "unknown keys ['outptu']"),
        (3, "must be a table"),
    ],
)
def test_bad_pricing_keeps_defaults_with_a_warning(entry: object, message: str) -> None:
    settings, warnings = merge_settings(Settings(), {"pricing": {"m": entry}})
    assert settings.pricing == {}
    assert any(message in w for w in warnings), warnings
