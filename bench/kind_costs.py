"""Snapshot budget per task kind and what one request costs at the presets' prices.

    python bench/kind_costs.py

Computed from the code, not measured: the budgets are ``agents/sizing.snapshot_budget`` for each
preset's window (``context.reserve`` at its default), the prices ``agents/pricing.PRESET_PRICES``.
One request is taken as the snapshot filled to its budget plus ``TASK_TOKENS`` of task message
(task, plan, instructions) and a ``REPLY_TOKENS`` reply. "cold" = no prompt token served by the
prefix cache (a task's first request on a new prefix); "warm" = the stable prefix served from
the cache (``context.snapshot.prefix_budget_for``: the budget less the tail's share), the tail,
task message and reply paid in full (every later request on that prefix). docs/architecture.md
and README.md quote this table.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lsp_agent.agents import sizing
from lsp_agent.agents.pricing import PRESET_PRICES
from lsp_agent.config import ContextSettings
from lsp_agent.context.snapshot import prefix_budget_for

TASK_TOKENS = 3_000
REPLY_TOKENS = 1_000
PRESETS = {  # provider -> (window, tokenizer family, the models whose requests carry a snapshot)
    "deepseek": (1_000_000, "deepseek", ("deepseek-v4-flash", "deepseek-v4-pro")),
    "moonshot": (262_144, "", ("kimi-k2.6",)),
    "openai": (128_000, "openai", ("gpt-4.1-mini", "gpt-4.1")),
}


def main() -> None:
    reserve = ContextSettings().reserve
    print(f"one request = snapshot + {TASK_TOKENS:,} task tokens + a {REPLY_TOKENS:,}-token reply")
    print(f"{'provider':<9}{'window':>10} {'kind':<12}{'snapshot':>10}  model: cold / warm (USD)")
    for provider, (window, family, models) in PRESETS.items():
        for kind in sizing.KIND_BUDGETS:
            budget = sizing.snapshot_budget(window, kind=kind, reserve=reserve, provider=family)
            prompt = budget + TASK_TOKENS
            cached = prefix_budget_for(budget)
            costs = []
            for model in models:
                price = PRESET_PRICES[provider][model]
                cold = price.cost(prompt_tokens=prompt, completion_tokens=REPLY_TOKENS)
                warm = price.cost(
                    prompt_tokens=prompt, cached_tokens=cached, completion_tokens=REPLY_TOKENS
                )
                costs.append(f"{model} ${cold:.4f} / ${warm:.4f}")
            print(f"{provider:<9}{window:>10,} {kind:<12}{budget:>10,}  " + "; ".join(costs))


if __name__ == "__main__":
    main()
