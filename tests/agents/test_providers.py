"""Provider presets, resolution from settings + environment, and request adaptation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from lsp_agent.agents.providers import (
    NO_PROVIDER_MESSAGE,
    PRESETS,
    describe_provider,
    prepare_messages,
    resolve_provider,
    validate_tool_schemas,
)
from lsp_agent.config import (
    ROLES,
    ConfigError,
    ModelSettings,
    Settings,
    load_settings,
    user_config_path,
)

SECRET = "sk-very-secret-0123456789"


def settings(**model: object) -> Settings:
    return Settings(model=ModelSettings(**model))  # type: ignore[arg-type]


def test_no_configuration_says_exactly_what_to_set() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_provider(Settings(), {})
    message = str(err.value)
    assert message == NO_PROVIDER_MESSAGE
    for needed in ("DEEPSEEK_API_KEY", "MOONSHOT_API_KEY", "OPENAI_API_KEY", "LSP_AGENT_BASE_URL"):
        assert needed in message
    assert "provider" in message and "config.toml" in message


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEEPSEEK_API_KEY": SECRET}, "deepseek"),
        ({"MOONSHOT_API_KEY": SECRET}, "moonshot"),
        ({"OPENAI_API_KEY": SECRET}, "openai"),
        ({"OPENAI_API_KEY": SECRET, "DEEPSEEK_API_KEY": SECRET}, "deepseek"),
        ({"LSP_AGENT_BASE_URL": "http://127.0.0.1:11434/v1", "OPENAI_API_KEY": SECRET}, "local"),
        (
            {"LSP_AGENT_BASE_URL": "https://api.deepseek.com", "DEEPSEEK_API_KEY": SECRET},
            "deepseek",
        ),
    ],
)
def test_auto_detection(env: dict[str, str], expected: str) -> None:
    loaded, warnings = load_settings(None, env=env)
    assert warnings == []
    assert resolve_provider(loaded, env).name == expected


def test_deepseek_preset_defaults_and_role_models() -> None:
    provider = resolve_provider(settings(provider="deepseek"), {"DEEPSEEK_API_KEY": SECRET})
    assert provider.base_url == "https://api.deepseek.com"
    assert provider.api_key == SECRET and provider.api_key_env == "DEEPSEEK_API_KEY"
    assert provider.context_window == 1_000_000
    assert provider.model_for("coder") == "deepseek-v4-pro"
    assert provider.model_for("researcher") == "deepseek-v4-flash"
    assert provider.supports_reasoning_echo and provider.extra_body == {}
    assert set(provider.models) == set(ROLES)


def test_model_names_are_configuration() -> None:
    custom = settings(
        provider="moonshot", model="kimi-custom", role_models={"reviewer": "kimi-fast"}
    )
    provider = resolve_provider(custom, {"MOONSHOT_API_KEY": SECRET})
    assert provider.model_for("coder") == "kimi-custom"
    assert provider.model_for("reviewer") == "kimi-fast"
    assert provider.base_url == "https://api.moonshot.ai/v1"
    assert provider.context_window == 262_144 and provider.drop_empty_tool_content


def test_environment_overrides_from_load_settings() -> None:
    env = {
        "LSP_AGENT_PROVIDER": "openai",
        "LSP_AGENT_BASE_URL": "http://proxy.internal:8080/v1/",
        "LSP_AGENT_MODEL": "gpt-custom",
        "LSP_AGENT_API_KEY": "override-key",
        "OPENAI_API_KEY": SECRET,
        "LSP_AGENT_CODER_MODEL": "gpt-coder",
    }
    loaded, _ = load_settings(None, env=env)
    provider = resolve_provider(loaded, env)
    assert provider.name == "openai"
    assert provider.base_url == "http://proxy.internal:8080/v1"
    assert provider.api_key == "override-key" and provider.api_key_env == "LSP_AGENT_API_KEY"
    assert provider.model_for("researcher") == "gpt-custom"
    assert provider.model_for("coder") == "gpt-coder"


def test_api_key_env_setting_names_the_variable() -> None:
    custom = settings(provider="openai", api_key_env="MY_GATEWAY_KEY")
    provider = resolve_provider(custom, {"MY_GATEWAY_KEY": "gw", "OPENAI_API_KEY": SECRET})
    assert provider.api_key == "gw"
    with pytest.raises(ConfigError, match="set MY_GATEWAY_KEY"):
        resolve_provider(custom, {"OPENAI_API_KEY": SECRET})


def test_preset_without_its_key_names_the_variable() -> None:
    with pytest.raises(ConfigError) as err:
        resolve_provider(settings(provider="moonshot"), {})
    assert "MOONSHOT_API_KEY" in str(err.value) and "LSP_AGENT_API_KEY" in str(err.value)


def test_local_needs_a_base_url_but_no_key() -> None:
    with pytest.raises(ConfigError, match="LSP_AGENT_BASE_URL"):
        resolve_provider(settings(provider="local"), {})
    provider = resolve_provider(settings(provider="local", base_url="http://127.0.0.1:8000/v1"), {})
    assert provider.api_key_env == "" and provider.api_key  # the SDK needs a non-empty key
    assert provider.model_for("coder") == ""  # discovered from /v1/models by the client


def test_bad_base_url_scheme_is_rejected() -> None:
    with pytest.raises(ConfigError, match="http"):
        resolve_provider(settings(provider="local", base_url="127.0.0.1:8000"), {})


def test_thinking_switch_and_extra_body_pass_through() -> None:
    env = {"DEEPSEEK_API_KEY": SECRET}
    thinking = resolve_provider(settings(provider="deepseek", thinking=True), env)
    assert thinking.extra_body == {"thinking": {"type": "enabled"}}
    custom = resolve_provider(
        settings(
            provider="deepseek",
            thinking=True,
            extra_body={"thinking": {"type": "disabled"}, "top_k": 5},
        ),
        env,
    )
    assert custom.extra_body == {"thinking": {"type": "disabled"}, "top_k": 5}


def test_context_window_setting_wins_over_the_preset() -> None:
    provider = resolve_provider(
        settings(provider="openai", context_window=32_000), {"OPENAI_API_KEY": SECRET}
    )
    assert provider.context_window == 32_000


def test_key_never_in_repr_str_describe_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider = resolve_provider(settings(provider="deepseek"), {"DEEPSEEK_API_KEY": SECRET})
    logging.getLogger("test").info("provider %s %r", provider, provider)
    public = json.dumps(provider.public_dict())
    texts = [repr(provider), str(provider), describe_provider(provider), caplog.text, public]
    assert all(SECRET not in text for text in texts)
    assert "DEEPSEEK_API_KEY" in describe_provider(provider)
    assert "deepseek-v4-pro" in describe_provider(provider)
    assert json.loads(public)["models"]["coder"] == "deepseek-v4-pro"


def test_every_preset_names_a_model_or_discovers_one() -> None:
    for name, preset in PRESETS.items():
        assert set(preset.models) == set(ROLES), name
        assert preset.context_window > 0
        assert bool(preset.base_url) == (name != "local")


def test_tool_schema_validation_lists_every_problem() -> None:
    good = {
        "type": "function",
        "function": {
            "name": "submit_plan",
            "parameters": {
                "type": "object",
                "properties": {
                    "targets": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"path": {"type": "string"}}},
                    }
                },
            },
        },
    }
    validate_tool_schemas([good])
    untyped = {
        "type": "function",
        "function": {
            "name": "read_file",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"description": "no type"},
                    "ranges": {"type": "array", "items": {"properties": {}}},
                },
            },
        },
    }
    with pytest.raises(ValueError) as err:
        validate_tool_schemas(
            [good, untyped, {"type": "function", "function": {"name": "bad name"}}, good]
        )
    message = str(err.value)
    assert "read_file.path" in message and "read_file.ranges[]" in message
    assert "'bad name'" in message and "defined twice" in message


def test_prepare_messages_adapts_assistant_turns_per_provider() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    history = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "reasoning_content": "why", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
        {"role": "assistant", "content": "done", "reasoning_content": "final thoughts"},
    ]
    deepseek = resolve_provider(settings(provider="deepseek"), {"DEEPSEEK_API_KEY": SECRET})
    moonshot = resolve_provider(settings(provider="moonshot"), {"MOONSHOT_API_KEY": SECRET})
    for_deepseek = prepare_messages(history, deepseek)
    for_kimi = prepare_messages(history, moonshot)
    assert for_deepseek[1]["reasoning_content"] == "why" and for_deepseek[1]["content"] == ""
    assert "reasoning_content" not in for_deepseek[3]  # only tool-call turns carry it back
    assert "content" not in for_kimi[1] and "reasoning_content" not in for_kimi[1]
    assert for_kimi[3] == {"role": "assistant", "content": "done"}
    assert for_kimi[0] is history[0]  # untouched messages are not copied
    assert history[1]["reasoning_content"] == "why"  # the caller's history is not mutated


def test_workspace_toml_selects_the_provider_only_when_trusted(tmp_path: Path) -> None:
    (tmp_path / ".lsp-agent.toml").write_text(
        'provider = "local"\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    loaded, warnings = load_settings(tmp_path, env={})
    assert "model.provider, model.base_url" in warnings[0]
    with pytest.raises(ConfigError):  # nothing configured: the workspace file did not count
        resolve_provider(loaded, {})
    user_config = user_config_path()
    user_config.parent.mkdir(parents=True, exist_ok=True)
    user_config.write_text(f"trusted_workspaces = [{str(tmp_path)!r}]\n")
    loaded, warnings = load_settings(tmp_path, env={})
    assert warnings == []
    provider = resolve_provider(loaded, {})
    assert (provider.name, provider.base_url) == ("local", "http://127.0.0.1:9/v1")
