from __future__ import annotations

from pathlib import Path

from lsp_agent.config import Settings, load_settings, merge_settings, workspace_cache_dir


def test_camel_case_nested_and_flat_settings_merge() -> None:
    settings, warnings = merge_settings(
        Settings(),
        {
            "provider": "deepseek",
            "baseUrl": "http://127.0.0.1:9/v1",
            "models": {"coder": "deepseek-v4-pro"},
            "contextBudget": 64000,
            "confirmEdits": True,
            "budgets": {"maxSteps": 5},
        },
    )
    assert warnings == []
    assert settings.model.provider == "deepseek"
    assert settings.model.base_url == "http://127.0.0.1:9/v1"
    assert settings.model.role_models == {"coder": "deepseek-v4-pro"}
    assert settings.context.budget == 64000
    assert settings.confirm_edits is True
    assert settings.budgets.max_steps == 5


def test_invalid_values_fall_back_with_a_warning() -> None:
    settings, warnings = merge_settings(
        Settings(), {"contextBudget": "lots", "confirmEdits": "maybe", "nonsense": 1}
    )
    assert settings.context.budget == Settings().context.budget
    assert settings.confirm_edits is False
    assert len(warnings) == 3
    assert any("context.budget" in w for w in warnings)
    assert any("nonsense" in w for w in warnings)


def test_unknown_provider_keeps_previous_settings() -> None:
    base, _ = merge_settings(Settings(), {"provider": "openai"})
    settings, warnings = merge_settings(base, {"provider": "skynet"})
    assert settings.model.provider == "openai"
    assert any("provider" in w for w in warnings)


def test_sources_in_precedence_order(tmp_path: Path) -> None:
    (tmp_path / ".lsp-agent.toml").write_text('[model]\nprovider = "moonshot"\nmodel = "kimi"\n')
    env = {"LSP_AGENT_MODEL": "from-env"}
    settings, warnings = load_settings(tmp_path, overrides={"contextBudget": 1000}, env=env)
    assert warnings == []
    assert settings.model.provider == "moonshot"  # file
    assert settings.model.model == "from-env"  # env beats file
    assert settings.context.budget == 1000  # overrides beat everything


def test_broken_workspace_file_is_a_warning(tmp_path: Path) -> None:
    (tmp_path / ".lsp-agent.toml").write_text("this is [not toml")
    settings, warnings = load_settings(tmp_path, env={})
    assert settings == Settings()
    assert warnings and ".lsp-agent.toml" in warnings[0]


def test_workspace_cache_dirs_differ_per_root(tmp_path: Path) -> None:
    a = workspace_cache_dir(tmp_path / "a", env={"LSP_AGENT_CACHE_DIR": str(tmp_path)})
    b = workspace_cache_dir(tmp_path / "b", env={"LSP_AGENT_CACHE_DIR": str(tmp_path)})
    assert a != b and a.parent == b.parent


def test_flat_model_name_and_nested_model_section_both_work() -> None:
    flat, warnings = merge_settings(Settings(), {"model": "kimi-k2.6"})
    assert warnings == [] and flat.model.model == "kimi-k2.6"
    nested, warnings = merge_settings(Settings(), {"model": {"model": "x", "thinking": True}})
    assert warnings == [] and nested.model.model == "x" and nested.model.thinking is True
