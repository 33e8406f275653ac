"""Request sizing: how a model's context window is shared out, the one rule for every request.

A request is ``prompt + max_tokens <= window``. Working back from the window:

- the reply's room (``reply_tokens``) is the ``max_tokens`` sent with every request of a role;
- the tokenizer margin (``margin_rate``) is proportional to the prompt: our counts are exact
  only with the provider's own tokenizer (``tokenizer_for``), otherwise cl100k stands in and may
  undercount (measured on the stdlib: DeepSeek V4 counts 5.7% more than cl100k, 25% more on the
  worst file);
- the conversation's room (``conversation_room``) is what a role's conversation may grow into
  after the snapshot: task message, plan, its file, tool results, feedback rounds. A
  conversation that grows past it has its older tool results elided (``agents/fit.py``);
- the snapshot gets the rest (``snapshot_ceiling``), or less: the default per task kind
  (``KIND_BUDGETS``), since a quickfix does not need a million tokens of context and a large
  prefill is slow even when cached. ``context.budget`` overrides the default, never the ceiling.

The worker (``run_task``), the server (``handlers/taskflow.py``, ``lspAgent/context``), the batch
command and its dry run all size through ``context.snapshot.budget_for``, which calls this.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lsp_agent.config import Settings

# role -> (largest reply, the reply's share of the window as a divisor). A coder writes
# SEARCH/REPLACE blocks (long); the others write tool calls, a plan or a verdict.
REPLY_SIZES: Mapping[str, tuple[int, int]] = {
    "researcher": (8_192, 16),
    "reviewer": (8_192, 16),
    "coder": (32_768, 8),
    "planner": (16_384, 8),
    "debugger": (16_384, 8),
}
DEFAULT_REPLY = (8_192, 16)
MIN_REPLY = 256
# Roles whose requests carry the snapshot: the ceiling must leave each its reply and room.
SNAPSHOT_ROLES = ("researcher", "coder", "reviewer")

# Tokenizer margins, a share of the counted prompt. With the provider's own tokenizer only the
# chat template's few tokens per message are uncounted; cl100k against another tokenizer may be
# off by the measured gap and more on unusual text.
MARGIN_EXACT = 0.01
MARGIN_CLOSE = 0.03  # OpenAI models (o200k/cl100k family): cl100k is within a few percent
MARGIN_OTHER = 0.15  # any other tokenizer counted with cl100k (Kimi, local models)
MARGIN_DEEPSEEK_CL100K = 0.10  # DeepSeek V4 counted with cl100k (its own is unavailable)
MESSAGE_OVERHEAD = 8  # chat-template tokens per message (role markers, separators)

# Snapshot budget by task kind (tokens), and why:
# - fix: a diagnostic's file and the signatures around it; prefill stays under a few seconds.
# - instruction: a free-form change to one file: its neighbourhood and some of the repo map.
# - refactor: changes that reach callers across files want a much larger repo map.
# - goal: multi-step runs over the project use the whole window (0 = the ceiling).
KIND_BUDGETS: Mapping[str, int] = {
    "fix": 32_768,
    "instruction": 65_536,
    "refactor": 131_072,
    "goal": 0,
}
DEFAULT_KIND = "instruction"

# Windows of known model families, by words in the model name (configuration and the server's
# own report win; see ``window_for``).
WINDOW_PRESETS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("deepseek", "v4"), 1_000_000),
    (("kimi", "k2.6"), 262_144),
    (("kimi", "k2-6"), 262_144),
)
DEFAULT_WINDOW = 128_000


def reply_tokens(role: str, window: int) -> int:
    """The ``max_tokens`` to send with a request of ``role`` to a model with ``window``."""
    if window <= 0:
        raise ValueError(f"the context window must be positive, got {window}")
    largest, divisor = REPLY_SIZES.get(role, DEFAULT_REPLY)
    return max(min(largest, window // divisor), min(MIN_REPLY, window // 4))


def margin_rate(tokenizer: str, provider: str = "") -> float:
    """The share of the counted prompt kept free for what the count may miss; ``provider`` is
    the tokenizer family (``family_of``)."""
    if tokenizer != "cl100k":
        return MARGIN_EXACT  # the provider's own tokenizer
    if provider == "openai":
        return MARGIN_CLOSE
    if provider == "deepseek":
        return MARGIN_DEEPSEEK_CL100K
    return MARGIN_OTHER


def prompt_limit(role: str, window: int, *, tokenizer: str = "cl100k", provider: str = "") -> int:
    """The most prompt tokens (as counted with ``tokenizer``, message overheads included) a
    request of ``role`` may carry: with the margin on top and the reply after it, it fits."""
    room = window - reply_tokens(role, window)
    return max(0, math.floor(room / (1 + margin_rate(tokenizer, provider))))


def conversation_room(window: int, reserve: int = 0) -> int:
    """Tokens a role's conversation may take beyond the snapshot: an eighth of the window, at
    least ``reserve`` (``context.reserve``) but never more than half the window."""
    return min(max(window // 8, reserve), window // 2)


def snapshot_ceiling(
    window: int, *, reserve: int = 0, tokenizer: str = "cl100k", provider: str = ""
) -> int:
    """The largest snapshot that leaves every snapshot-carrying role its reply, margin and
    conversation room. The snapshot is counted with cl100k whatever the provider."""
    del tokenizer  # the snapshot's own counts are cl100k: its margin is cl100k's
    limit = min(prompt_limit(r, window, provider=provider) for r in SNAPSHOT_ROLES)
    return max(1, limit - conversation_room(window, reserve))


def snapshot_budget(
    window: int, *, kind: str = DEFAULT_KIND, override: int = 0, reserve: int = 0,
    provider: str = "",
) -> int:  # fmt: skip
    """The snapshot budget for a task of ``kind``: ``override`` (``context.budget``) or the
    kind's default, never above ``snapshot_ceiling``."""
    ceiling = snapshot_ceiling(window, reserve=reserve, provider=provider)
    wanted = override or KIND_BUDGETS.get(kind, KIND_BUDGETS[DEFAULT_KIND]) or ceiling
    return min(wanted, ceiling)


def window_for(settings: Settings, model_name: str | None = None, provider: Any = None) -> int:
    """The model's window: configured (``model.context_window``), else what the provider
    resolved (``ProviderConfig.context_window``: its preset, or the server's report), else the
    preset for the model's name, else 128,000."""
    if settings.model.context_window:
        return settings.model.context_window
    resolved = getattr(provider, "context_window", 0) if provider is not None else 0
    if resolved:
        return int(resolved)
    name = (model_name or settings.model.model or "").lower()
    return next(
        (size for words, size in WINDOW_PRESETS if all(w in name for w in words)),
        DEFAULT_WINDOW,
    )


def family_of(settings: Settings, model_name: str | None = None, provider: Any = None) -> str:
    """Whose tokenizer the model uses: "deepseek" (V4 models), "openai", or "" (unknown)."""
    name = (model_name or settings.model.model or "").lower()
    if "deepseek" in name and "v4" in name:
        return "deepseek"
    if name.startswith(("gpt-", "o1", "o3", "o4")):
        return "openai"
    chosen = str(getattr(provider, "name", "") or settings.model.provider or "")
    if chosen == "deepseek" and not name:
        return "deepseek"
    return "openai" if chosen == "openai" and not name else ""
