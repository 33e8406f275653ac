"""A goal run's budgets: tokens (cached prompt tokens at their price ratio), estimated cost,
and wall clock, over the whole run (every session of it). Checked at step boundaries; a step
in flight gets what is left as its own token and time limits, so it cannot overrun by much."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lsp_agent.agents.pricing import price_for
from lsp_agent.config import BudgetSettings, Settings
from lsp_agent.tasks.model import usage_dict


@dataclass(frozen=True)
class RunBudget:
    tokens: int = 0  # 0 = no limit
    cost: float = 0.0  # dollars; 0 = no limit
    hours: float = 0.0  # wall clock while running; 0 = no limit

    def to_json(self) -> dict[str, float]:
        return {"tokens": self.tokens, "cost": self.cost, "hours": self.hours}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunBudget:
        tokens, cost, hours = data.get("tokens"), data.get("cost"), data.get("hours")
        return cls(int(tokens or 0), float(cost or 0), float(hours or 0))


class Pricing:
    """The run's price: that of the coder's model (every preset's most expensive role), when
    one is known; otherwise cost is unknown and cached tokens count in full."""

    def __init__(self, settings: Settings, provider: Any) -> None:
        self.price: Any = None
        if provider is not None:
            self.price = price_for(settings, provider.name, provider.model_for("coder"))

    def cost(self, usage: Mapping[str, int]) -> float | None:
        if self.price is None:
            return None
        return self.price.cost(
            prompt_tokens=usage.get("prompt_tokens", 0),
            cached_tokens=usage.get("cached_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
        )

    def weighted_tokens(self, usage: Mapping[str, int]) -> int:
        weight = 1.0 if self.price is None else float(self.price.cached_weight)
        prompt, cached = usage.get("prompt_tokens", 0), usage.get("cached_tokens", 0)
        cached = min(cached, prompt)
        return int(prompt - cached + cached * weight + usage.get("completion_tokens", 0))


def add_usage(total: Mapping[str, int], more: Any) -> dict[str, int]:
    extra = usage_dict(more)
    base = usage_dict(total)
    return {key: base[key] + extra[key] for key in base}


def exhausted(
    budget: RunBudget, pricing: Pricing, usage: Mapping[str, int], seconds: float
) -> str | None:
    """Why the run must stop now, or None."""
    if budget.tokens and pricing.weighted_tokens(usage) >= budget.tokens:
        return (
            f"token budget reached: {pricing.weighted_tokens(usage):,} of {budget.tokens:,} "
            "(resume with a larger --budget-tokens)"
        )
    cost = pricing.cost(usage)
    if budget.cost and cost is not None and cost >= budget.cost:
        return f"cost budget reached: ${cost:.4f} of ${budget.cost:.4f} (resume with more)"
    if budget.hours and seconds >= budget.hours * 3600:
        return (
            f"time budget reached: {seconds / 3600:.2f} h of {budget.hours:g} h "
            "(resume with a larger --max-hours)"
        )
    return None


def step_limits(
    base: BudgetSettings,
    budget: RunBudget,
    pricing: Pricing,
    usage: Mapping[str, int],
    seconds: float,
) -> tuple[BudgetSettings, bool]:
    """The step's task budgets: the configured per-task limits, lowered to what the run has
    left. The flag says the run's budget, not the step's, is the binding one."""
    limits, bound = base, False
    if budget.tokens:
        left = max(1, budget.tokens - pricing.weighted_tokens(usage))
        if left < limits.max_tokens:
            limits, bound = dataclasses.replace(limits, max_tokens=left), True
    if budget.hours:
        left_s = max(1.0, budget.hours * 3600 - seconds)
        if left_s < limits.max_seconds:
            limits, bound = dataclasses.replace(limits, max_seconds=left_s), True
    return limits, bound
