"""Token budget under parallel coders: how far a task overruns ``budgets.max_tokens``.

    .venv/bin/python bench/bench_budget.py [--files 8] [--budget 25000] [--prefix-chars 40000]

One run_task through the real scripted server and client: a researcher plans one target per
file, one coder per file (all in flight together, 200 ms each), a reviewer. Two budgets side by
side on the same task: the baseline checks the budget before each request on what was spent
(the code before reservations: every parallel coder passes on the researcher's usage alone),
the current one reserves an estimate before each request. Prints, for each: the state, tokens
spent, the overrun past the budget, and the overrun in units of the largest request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from unittest import mock

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from lsp_agent.agents import orchestrator  # noqa: E402
from lsp_agent.agents.loop import Budget  # noqa: E402
from tests.agents.test_orchestrator import (  # noqa: E402
    block,
    coder_rule,
    make_workspace,
    plan_rule,
    review_rule,
    run,
    settings_with,
)
from tests.support.scripted_model import ScriptedModel, max_overlap  # noqa: E402


class CheckOnlyBudget(Budget):
    """The baseline: no reservations, only the check on spent tokens before each request."""

    @contextlib.asynccontextmanager
    async def reserve(self, estimate: Callable[[], int]) -> AsyncIterator[int]:
        self.check()
        yield 0


async def one(files: int, budget: int, prefix_chars: int, baseline: bool) -> dict[str, Any]:
    sources = {
        f"pkg/m{i}.py": "".join(f"def f{i}_{k}(x):\n    return x + {k}\n\n\n" for k in range(60))
        for i in range(files)
    }
    prefix = "PREFIX\n" + ("".join(sources.values()) * 50)[:prefix_chars]
    with tempfile.TemporaryDirectory() as tmp, ScriptedModel() as model:
        index = make_workspace(Path(tmp) / "ws", sources)
        model.add_rule(plan_rule([{"path": p, "instructions": "double"} for p in sources]))
        for path in sources:
            edit = block(path, "    return x + 0\n", "    return (x + 0) * 2\n")
            model.add_rule(coder_rule(path, edit, delay_ms=200))
        model.add_rule(review_rule(True))
        patch = (
            mock.patch.object(orchestrator, "Budget", CheckOnlyBudget)
            if baseline
            else contextlib.nullcontext()
        )
        with patch:
            result = await run(
                index, model, Path(tmp), settings=settings_with(max_tokens=budget), prefix=prefix
            )
        sizes = [r.usage["prompt_tokens"] + r.usage["completion_tokens"] for r in model.requests]
        coders = [r for r in model.requests if "# Role: coder" in str(r.messages[2]["content"])]
        spent = result.usage.total_tokens
        return {
            "state": result.state,
            "requests": len(sizes),
            "coders in flight": max_overlap(coders),
            "spent": spent,
            "overrun": spent - budget,
            "largest request": max(sizes),
            "overrun / largest": (spent - budget) / max(sizes),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--budget", type=int, default=25_000)
    parser.add_argument("--prefix-chars", type=int, default=40_000)
    args = parser.parse_args()
    rows = {
        "baseline (check only)": asyncio.run(one(args.files, args.budget, args.prefix_chars, True)),
        "reserve + settle": asyncio.run(one(args.files, args.budget, args.prefix_chars, False)),
    }
    print(f"{args.files} files, max_tokens {args.budget:,}, prefix {args.prefix_chars:,} chars")
    keys = list(next(iter(rows.values())))
    print(f"{'':24}" + "".join(f"{k:>18}" for k in keys))
    for name, row in rows.items():
        cells = [f"{v:>18.2f}" if isinstance(v, float) else f"{v!s:>18}" for v in row.values()]
        print(f"{name:24}" + "".join(cells))


if __name__ == "__main__":
    main()
