"""The one sizing rule: reply room per role, tokenizer margin, conversation room, snapshot ceiling,
and the snapshot budget per task kind (budget_for, which the server and the batch command call)."""

from __future__ import annotations

import pytest

from lsp_agent.agents import sizing
from lsp_agent.config import ContextSettings, ModelSettings, Settings
from lsp_agent.context.snapshot import budget_for

WINDOWS = (8_192, 128_000, 262_144, 1_000_000)
FAMILIES = ("deepseek", "openai", "")


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_role_fits_its_window_with_the_largest_snapshot(window: int, family: str) -> None:
    ceiling = sizing.snapshot_ceiling(window, reserve=16_384, provider=family)
    room = sizing.conversation_room(window, 16_384)
    for role in sizing.SNAPSHOT_ROLES:
        reply = sizing.reply_tokens(role, window)
        counted = ceiling + room  # the most a request of this role may hold (cl100k counts)
        with_margin = counted * (1 + sizing.margin_rate("cl100k", family))
        assert with_margin + reply <= window, (role, window, family)
        assert counted <= sizing.prompt_limit(role, window, provider=family)


def test_reply_room_per_role() -> None:
    assert sizing.reply_tokens("coder", 1_000_000) == 32_768
    assert sizing.reply_tokens("coder", 128_000) == 16_000  # an eighth of a small window
    assert sizing.reply_tokens("researcher", 1_000_000) == 8_192
    assert sizing.reply_tokens("reviewer", 128_000) == 8_000
    assert sizing.reply_tokens("coder", 8_192) == 1_024
    assert sizing.reply_tokens("unknown-role", 262_144) == 8_192
    assert sizing.reply_tokens("researcher", 512) == 128  # never the whole of a tiny window
    with pytest.raises(ValueError, match="window must be positive"):
        sizing.reply_tokens("coder", 0)


def test_margin_is_proportional_and_smallest_with_the_providers_own_tokenizer() -> None:
    exact = sizing.prompt_limit("coder", 1_000_000, tokenizer="deepseek-v4", provider="deepseek")
    approx = sizing.prompt_limit("coder", 1_000_000, tokenizer="cl100k", provider="deepseek")
    assert exact > approx
    # The margin grows with the window: at 1M it is far above the old fixed 16k reserve.
    gap = (1_000_000 - sizing.reply_tokens("coder", 1_000_000)) - approx
    assert gap > 16_384 * 4


def _settings(model: str = "", window: int = 0, budget: int = 0, provider: str = "") -> Settings:
    return Settings(
        model=ModelSettings(provider=provider, model=model, context_window=window),
        context=ContextSettings(budget=budget),
    )


def test_budget_by_task_kind_never_above_the_ceiling() -> None:
    s = _settings()
    assert budget_for(s, "deepseek-v4-pro", kind="fix") == 32_768
    assert budget_for(s, "deepseek-v4-pro", kind="instruction") == 65_536
    assert budget_for(s, "deepseek-v4-pro", kind="refactor") == 131_072
    goal = budget_for(s, "deepseek-v4-pro", kind="goal")
    assert goal == sizing.snapshot_ceiling(1_000_000, reserve=16_384, provider="deepseek")
    assert 700_000 < goal < 1_000_000 - 16_384
    # a 128k model: a refactor's default is more than the window leaves, so the ceiling wins
    small = budget_for(s, "gpt-4.1", kind="refactor")
    assert small == sizing.snapshot_ceiling(128_000, reserve=16_384, provider="openai")
    assert small < 128_000 - 16_000 - 16_384


def test_budget_override_and_window_sources() -> None:
    assert budget_for(_settings(budget=50_000), "kimi-k2.6", kind="goal") == 50_000
    # an override above what the window allows is capped: a request must still fit
    capped = budget_for(_settings(budget=10_000_000), "kimi-k2.6")
    assert capped == sizing.snapshot_ceiling(262_144, reserve=16_384)
    # the configured window beats the model name's preset
    assert budget_for(_settings(window=64_000), "deepseek-v4-pro", kind="goal") < 64_000 // 2 * 2

    class Provider:
        name = "local"
        context_window = 8_192  # e.g. what the server reported

    tiny = budget_for(_settings(), None, kind="goal", provider=Provider())
    assert 0 < tiny < 8_192 // 2


def test_window_for_prefers_configuration_then_provider_then_name() -> None:
    class Provider:
        name = "deepseek"
        context_window = 1_000_000

    assert sizing.window_for(_settings(window=32_000), "deepseek-v4-pro", Provider()) == 32_000
    assert sizing.window_for(_settings(), "gpt-4.1", Provider()) == 1_000_000
    assert sizing.window_for(_settings(), "kimi-k2.6") == 262_144
    assert sizing.window_for(_settings(), "some-local-model") == 128_000
    assert sizing.family_of(_settings(), "deepseek-v4-flash") == "deepseek"
    assert sizing.family_of(_settings(), "gpt-4.1-mini") == "openai"
    assert sizing.family_of(_settings(provider="moonshot"), "kimi-k2.6") == ""
