"""The dry run on real code: prompt tokens per task and in total, the prefix-cache share, cost
ranges from the price presets or the settings, requests a window cannot fit, --task N."""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path

import pytest

from tests.batch.test_bad_input import cli

STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture
def code(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    for package in ("json", "tomllib"):
        shutil.copytree(
            STDLIB / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return root


def dry(code: Path, tmp_path: Path, *argv: str, **env: str) -> dict:
    run = cli(["refactor", "add type hints", "--dry-run", "--json", *argv], code, tmp_path, **env)
    assert run.code == 0, run.err
    return json.loads(run.out)


def test_human_plan_without_a_model(code: Path, tmp_path: Path) -> None:
    run = cli(["refactor", "add type hints", "--dry-run", "--split", "file"], code, tmp_path)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    why = "the folder of the current folder; no git work tree or project marker above"
    assert lines[0] == f"workspace root {code} ({why})"
    assert run.err.splitlines()[0].startswith(f"lsp-agent: workspace root {code}")
    assert "model: no model configured: set DEEPSEEK_API_KEY" in run.out
    task_lines = [line for line in lines if line.startswith("     ~")]
    assert len(task_lines) == len([p for p in (code).rglob("*.py") if p.stat().st_size > 0])
    assert all("expected from the prefix cache" in line for line in task_lines)
    for name in ("deepseek", "moonshot", "openai"):
        assert any(line.startswith(f"cost at {name}: $") for line in lines), run.out
    assert "the estimate covers the first requests of each task" in run.out


def test_totals_add_up_and_the_cache_share_is_the_shared_prefix(code: Path, tmp_path: Path) -> None:
    report = dry(code, tmp_path, "--split", "file", "--jobs", "2")
    tasks = report["tasks"]
    assert report["estimated_prompt_tokens"] == sum(t["total_prompt_tokens"] for t in tasks)
    assert report["expected_cached_tokens"] == sum(t["expected_cached_tokens"] for t in tasks)
    prefix = tasks[0]["prefix_tokens"]
    for number, task in enumerate(tasks):
        cold = 1 if number < 2 else 0  # the first request of each of the first --jobs tasks
        assert task["expected_cached_tokens"] == prefix * (task["requests"] - cold)
        for name in ("deepseek", "moonshot", "openai"):
            cost = task["cost"][name]
            assert 0 < cost["low"] < cost["high"]
    assert report["cost"]["deepseek"]["low"] < report["cost"]["openai"]["low"]


def test_settings_prices_and_a_configured_provider(code: Path, tmp_path: Path) -> None:
    # $1 per million prompt tokens, cached or not, replies free: the cost is the token count.
    (code / ".lsp-agent.toml").write_text(
        '[pricing."*"]\ninput = 1.0\ncached_input = 1.0\noutput = 0.0\n'
    )
    report = dry(code, tmp_path, DEEPSEEK_API_KEY="sk-test-not-used")
    assert list(report["cost"]) == ["deepseek"]
    total = report["estimated_prompt_tokens"] / 1_000_000
    assert report["cost"]["deepseek"] == {"low": pytest.approx(total), "high": pytest.approx(total)}
    human = cli(["refactor", "x", "--dry-run"], code, tmp_path, DEEPSEEK_API_KEY="sk-test")
    assert "cost: $" in human.out and "(settings prices)" in human.out


def test_a_local_model_has_no_price(code: Path, tmp_path: Path) -> None:
    run = cli(
        ["refactor", "x", "--dry-run"], code, tmp_path, LSP_AGENT_BASE_URL="http://127.0.0.1:9/v1"
    )
    assert run.code == 0, run.err
    assert "cost: unknown" in run.out


def test_requests_the_window_cannot_fit_are_reported(code: Path, tmp_path: Path) -> None:
    big = code / "json" / "big.py"
    big.write_text("".join(f"def f{n}(a, b):\n    return a * {n} + b\n" for n in range(6000)))
    # a file as PATH: its folder is the root (no git work tree or marker above it)
    report = dry(code, tmp_path, "json/big.py", LSP_AGENT_CONTEXT_WINDOW="32000")
    assert report["root"] == str(code / "json") and report["window"] == 32000
    assert report["tasks"][0]["unfit"] == ["coder:big.py"]
    human = cli(
        ["refactor", "x", "--dry-run", "json/big.py"], code, tmp_path,
        LSP_AGENT_CONTEXT_WINDOW="32000",
    )  # fmt: skip
    assert "does not fit: task 1, coder:big.py" in human.out


def test_verbose_shows_one_task_with_task_n(code: Path, tmp_path: Path) -> None:
    argv = ["refactor", "x", "--dry-run", "-v", "--split", "file"]
    every = cli(argv, code, tmp_path)
    one = cli([*argv, "--task", "2"], code, tmp_path)
    assert every.code == one.code == 0
    assert every.out.count("===== context for task ") > 2
    assert one.out.count("===== context for task ") == 1
    assert "===== context for task 2: " in one.out
    assert len(one.out) < len(every.out) / 2
    missing = cli([*argv, "--task", "99"], code, tmp_path)
    assert missing.code == 2 and "--task 99: the plan has tasks 1 to" in missing.err


def test_the_dry_run_shows_the_checks_a_task_would_run(code: Path, tmp_path: Path) -> None:
    (code / "tests").mkdir()
    (code / "tests" / "test_json.py").write_text("import json\n\n\ndef test_x():\n    pass\n")
    (code / "pyproject.toml").write_text("[tool.ruff]\n")
    report = dry(code, tmp_path)
    assert "pytest" in {c["name"] for c in report["checks"]}
    assert all(c["source"] == "detected" for c in report["checks"])
    run = cli(["refactor", "add type hints", "--dry-run"], code, tmp_path)
    assert "verification (run in the sandbox" in run.out and "pytest (test, detected)" in run.out
    (code / ".lsp-agent.toml").write_text("[verify]\nenabled = false\n")
    assert dry(code, tmp_path)["checks"] == []
