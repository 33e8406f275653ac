"""Task token budgets under parallel coders, through the real scripted server and run_task.

The issue's case: an 8-file task with a small ``max_tokens`` used to let every parallel coder
pass the check on the researcher's usage alone and spent several budgets before failing. Now
each request reserves an estimate first, so the overrun is at most one request. Cached prompt
tokens count at their weight (a setting; by default the model's price ratio).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.agents.loop import Budget, LimitsExceeded
from lsp_agent.agents.usage import Usage
from lsp_agent.config import BudgetSettings, ModelSettings, Settings
from tests.agents.test_orchestrator import (
    block,
    coder_rule,
    make_workspace,
    plan_rule,
    review_rule,
    run,
    settings_with,
)
from tests.support.scripted_model import ScriptedModel, max_overlap

FILES = {
    f"pkg/m{i}.py": "".join(f"def f{i}_{k}(x):\n    return x + {k}\n\n\n" for k in range(60))
    for i in range(8)
}
PREFIX = "PREFIX\n" + "".join(FILES.values())[:40_000]  # ~10k tokens, the same in every request


def eight_coder_task(model: ScriptedModel) -> None:
    model.add_rule(plan_rule([{"path": p, "instructions": "double f*_0"} for p in FILES]))
    for path in FILES:
        edit = block(path, "    return x + 0\n", "    return (x + 0) * 2\n")
        model.add_rule(coder_rule(path, edit, delay_ms=200))  # in flight together
    model.add_rule(review_rule(True))


def request_tokens(model: ScriptedModel, weight: float = 1.0) -> list[float]:
    out = []
    for request in model.requests:
        usage = request.usage
        prompt, cached = usage["prompt_tokens"], usage.get("prompt_cache_hit_tokens", 0)
        out.append(prompt - cached + cached * weight + usage["completion_tokens"])
    return out


def coder_requests(model: ScriptedModel) -> list[Any]:
    return [r for r in model.requests if "# Role: coder" in str(r.messages[2]["content"])]


async def test_eight_parallel_coders_overrun_a_small_budget_by_at_most_one_request(
    tmp_path: Path, scripted: ScriptedModel
) -> None:
    eight_coder_task(scripted)
    index = make_workspace(tmp_path / "ws", FILES)
    budget = 25_000
    result = await run(
        index, scripted, tmp_path, settings=settings_with(max_tokens=budget), prefix=PREFIX
    )
    assert result.state == "budget_exceeded" and "token budget" in (result.error or "")
    sizes = request_tokens(scripted)  # the scripted host is unpriced: cached tokens count in full
    spent = sum(sizes)
    assert spent == result.usage.total_tokens
    assert spent > budget  # the last request admitted alone crossed the line ...
    assert spent - budget <= max(sizes)  # ... by less than one request
    assert len(coder_requests(scripted)) < len(FILES)  # the rest were never sent
    assert result.changes == []


async def test_a_budget_that_fits_keeps_every_coder_in_parallel(
    tmp_path: Path, scripted: ScriptedModel
) -> None:
    eight_coder_task(scripted)
    index = make_workspace(tmp_path / "ws", FILES)
    result = await run(
        index, scripted, tmp_path, settings=settings_with(max_tokens=2_000_000), prefix=PREFIX
    )
    assert result.state == "succeeded", result.error
    assert max_overlap(coder_requests(scripted)) == len(FILES)


async def test_cached_tokens_count_at_their_weight(tmp_path: Path, scripted: ScriptedModel) -> None:
    """At weight 0.1 the cached prefix costs a tenth: the same task that cannot finish in
    30k tokens at full weight finishes, and what it charged is the weighted sum."""
    eight_coder_task(scripted)
    index = make_workspace(tmp_path / "ws", FILES)
    settings = settings_with(max_tokens=30_000, cached_token_weight=0.1)
    result = await run(index, scripted, tmp_path, settings=settings, prefix=PREFIX)
    assert result.state == "succeeded", result.error
    assert result.usage.total_tokens > 30_000  # raw tokens: more than the budget
    assert sum(request_tokens(scripted, 0.1)) <= 30_000  # spend: within it
    assert result.usage.cached_tokens > result.usage.prompt_tokens / 2

    scripted.clear_requests()
    full = await run(
        index,
        scripted,
        tmp_path,
        settings=settings_with(max_tokens=30_000, cached_token_weight=1.0),
        prefix=PREFIX,
    )
    assert full.state == "budget_exceeded"


def test_default_weight_is_the_models_price_ratio() -> None:
    settings = Settings(model=ModelSettings(provider="deepseek"))
    budget = Budget.for_settings(settings)
    budget.charge(
        Usage(prompt_tokens=10_000, cached_tokens=9_000, completion_tokens=100),
        provider="deepseek",
        model="deepseek-v4-flash",
    )
    # DeepSeek V4 Flash: cached input 0.0028 vs 0.14 per million = 0.02
    assert budget.tokens == 1_000 + 180 + 100
    unpriced = Budget.for_settings(settings)
    unpriced.charge(
        Usage(prompt_tokens=10_000, cached_tokens=9_000, completion_tokens=100),
        provider="local",
        model="my-model",
    )
    assert unpriced.tokens == 10_100  # no known price: cached tokens count in full
    fixed = Budget.for_settings(settings_with(cached_token_weight=0.5))
    fixed.charge(Usage(prompt_tokens=100, cached_tokens=100), provider="deepseek", model="x")
    assert fixed.tokens == 50


def test_weight_setting_is_validated() -> None:
    from lsp_agent.config import merge_settings

    settings, warnings = merge_settings(Settings(), {"budgets": {"cachedTokenWeight": 2}})
    assert settings.budgets.cached_token_weight == 0.0
    assert "cached_token_weight" in warnings[0]


async def test_a_request_that_does_not_fit_waits_for_those_in_flight() -> None:
    """Pure Budget: two reservations fit, a third waits; when one settles small, it fits."""
    budget = Budget(BudgetSettings(max_tokens=1_000))
    order: list[str] = []
    release_first = asyncio.Event()

    async def first() -> None:
        async with budget.reserve(lambda: 400):
            order.append("first sent")
            await release_first.wait()
            budget.charge(Usage(prompt_tokens=50, completion_tokens=10))
        order.append("first settled")

    async def second() -> None:
        async with budget.reserve(lambda: 400):
            order.append("second sent")
            await asyncio.sleep(0.05)
            budget.charge(Usage(prompt_tokens=390, completion_tokens=10))

    async def third() -> None:
        await asyncio.sleep(0.01)
        async with budget.reserve(lambda: 400):
            order.append("third sent")
            budget.charge(Usage(prompt_tokens=390, completion_tokens=10))

    async def unblock() -> None:
        await asyncio.sleep(0.1)
        order.append("unblock")
        release_first.set()

    await asyncio.gather(first(), second(), third(), unblock())
    assert order.index("third sent") > order.index("first settled") > order.index("unblock")
    assert budget.tokens == 60 + 400 + 400 and budget.reserved == 0
    with pytest.raises(LimitsExceeded):  # 860 spent: a 400 request still fits alone, then not
        async with budget.reserve(lambda: 400):
            budget.charge(Usage(prompt_tokens=400))
        async with budget.reserve(lambda: 1):
            pass
