"""What a planned run is expected to send and cost: the dry run's figures, no model called.

Covered: the first requests of every task as ``plan_task`` counts them (the researcher, one
coder per file, the reviewer). Tool-call turns, apply retries and review rounds come on top, so
the prompt figure is a lower bound; ``budgets.max_tokens`` caps what one task may spend.

Prefix cache: every request starts with the same system prompt and snapshot prefix, byte for
byte, so after a request has carried it the providers' prefix caches (DeepSeek, OpenAI, Kimi)
are expected to serve it. The first request of each of the first ``jobs`` tasks runs before any
other has finished, so those are counted as misses.

Cost range, per provider price (agents/pricing.py): low = the expected cache hits and short
replies (``LOW_REPLY_TOKENS`` each); high = no cache hit at all and every reply as long as it
may be (its ``max_tokens``, agents/sizing.py). Windows: a request whose prompt is over the
sizing rule's ``prompt_limit`` for its role does not fit, and is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lsp_agent.agents import sizing
from lsp_agent.agents.pricing import Price

LOW_REPLY_TOKENS = 300  # a short plan, a small edit, a verdict


@dataclass(frozen=True)
class RequestEstimate:
    key: str  # "researcher", "coder:<path>", "reviewer"
    role: str
    prompt_tokens: int
    cached_tokens: int  # expected from the prefix cache
    reply_max: int  # the max_tokens the request is sent with
    prompt_limit: int  # the most prompt tokens its window allows (sizing.prompt_limit)

    @property
    def fits(self) -> bool:
        return self.prompt_tokens <= self.prompt_limit


@dataclass(frozen=True)
class TaskEstimate:
    requests: list[RequestEstimate]

    @property
    def prompt_tokens(self) -> int:
        return sum(r.prompt_tokens for r in self.requests)

    @property
    def cached_tokens(self) -> int:
        return sum(r.cached_tokens for r in self.requests)

    @property
    def cached_share(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def cost_range(self, prices: Mapping[str, Price | None]) -> tuple[float, float] | None:
        """(low, high) dollars with ``prices`` per role; None when a role has no price."""
        low = high = 0.0
        for request in self.requests:
            price = prices.get(request.role)
            if price is None:
                return None
            low += price.cost(
                prompt_tokens=request.prompt_tokens,
                cached_tokens=request.cached_tokens,
                completion_tokens=min(LOW_REPLY_TOKENS, request.reply_max),
            )
            high += price.cost(
                prompt_tokens=request.prompt_tokens, completion_tokens=request.reply_max
            )
        return low, high


def role_of(key: str) -> str:
    return key.split(":", 1)[0]


def estimate_tasks(
    plans: Sequence[Any], *, jobs: int, window: int, family: str = ""
) -> list[TaskEstimate]:
    """One estimate per ``DryRunPlan`` (in run order) for a model with ``window`` tokens."""
    estimates = []
    for number, plan in enumerate(plans):
        requests = []
        for position, (key, tokens) in enumerate(plan.prompt_tokens.items()):
            role = role_of(key)
            cold = position == 0 and number < max(jobs, 1)
            cached = 0 if cold else min(plan.prefix_tokens, tokens)
            requests.append(
                RequestEstimate(
                    key=key,
                    role=role,
                    prompt_tokens=tokens,
                    cached_tokens=cached,
                    reply_max=sizing.reply_tokens(role, window),
                    prompt_limit=sizing.prompt_limit(role, window, provider=family),
                )
            )
        estimates.append(TaskEstimate(requests))
    return estimates


def total_range(
    estimates: Sequence[TaskEstimate], prices: Mapping[str, Price | None]
) -> tuple[float, float] | None:
    low = high = 0.0
    for estimate in estimates:
        found = estimate.cost_range(prices)
        if found is None:
            return None
        low, high = low + found[0], high + found[1]
    return low, high


def dollars(amount: float) -> str:
    """$0.0042, $0.31, $12.40: enough digits to tell small amounts apart."""
    if amount == 0:
        return "$0"
    if amount < 0.01:
        return f"${amount:.4f}"
    return f"${amount:,.2f}"
