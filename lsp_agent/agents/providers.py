"""Provider presets and resolution: which OpenAI-compatible endpoint, key and models to use.

Presets are data. Model names are configuration (``ModelSettings.model`` / ``role_models``), the
preset only supplies defaults. Secrets come from the environment only and never appear in a repr,
a log line or ``describe_provider``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from lsp_agent.config import ROLES, ConfigError, Settings

# Read directly from the environment so it works even with settings built without load_settings.
ENV_BASE_URL = "LSP_AGENT_BASE_URL"
ENV_API_KEY = "LSP_AGENT_API_KEY"
ENV_MODEL = "LSP_AGENT_MODEL"
# Placeholder for servers that ignore the key (vLLM, Ollama): the SDK insists on a non-empty one.
LOCAL_PLACEHOLDER_KEY = "not-needed"


@dataclass(frozen=True)
class Preset:
    name: str
    base_url: str  # "" = must be configured
    key_env: str  # "" = no key needed
    models: Mapping[str, str]  # role -> default model name
    context_window: int
    thinking_body: Mapping[str, Any] = field(default_factory=dict)
    # DeepSeek V4 rejects a tool-call turn that comes back without its reasoning_content.
    echo_reasoning: bool = False
    # Kimi rejects an empty string content on an assistant message that carries tool calls.
    drop_empty_tool_content: bool = False


def _all_roles(default: str, **overrides: str) -> Mapping[str, str]:
    return {role: overrides.get(role, default) for role in ROLES}


PRESETS: Mapping[str, Preset] = {
    "deepseek": Preset(
        name="deepseek",
        base_url="https://api.deepseek.com",
        key_env="DEEPSEEK_API_KEY",
        models=_all_roles("deepseek-v4-flash", coder="deepseek-v4-pro"),
        context_window=1_000_000,
        thinking_body={"thinking": {"type": "enabled"}},
        echo_reasoning=True,
    ),
    "moonshot": Preset(
        name="moonshot",
        base_url="https://api.moonshot.ai/v1",
        key_env="MOONSHOT_API_KEY",
        models=_all_roles("kimi-k2.6"),
        context_window=262_144,
        drop_empty_tool_content=True,
    ),
    "openai": Preset(
        name="openai",
        base_url="https://api.openai.com/v1",
        key_env="OPENAI_API_KEY",
        models=_all_roles("gpt-4.1-mini", coder="gpt-4.1"),
        context_window=128_000,
    ),
    "local": Preset(
        name="local",
        base_url="",
        key_env="",
        models=_all_roles(""),  # "" = ask the server's /v1/models for its first model
        context_window=128_000,
    ),
}

# Auto-detection order when no provider is configured and no base URL is set.
_DETECT_ORDER = ("deepseek", "moonshot", "openai")

NO_PROVIDER_MESSAGE = (
    "no model configured: set DEEPSEEK_API_KEY (provider deepseek), MOONSHOT_API_KEY (provider "
    "moonshot), OPENAI_API_KEY (provider openai), or LSP_AGENT_BASE_URL for a local server "
    "(vLLM/Ollama), or `provider` in ~/.config/lsp-agent/config.toml / the lspAgent settings "
    "(.lsp-agent.toml only in a workspace listed in trusted_workspaces there)"
)


@dataclass(frozen=True)
class ProviderConfig:
    """Everything the client needs to talk to one endpoint. The key is hidden from repr/str."""

    name: str
    base_url: str
    api_key: str = field(repr=False)
    api_key_env: str  # where the key came from ("" for none): named in auth errors
    models: Mapping[str, str]  # role -> model name ("" = discover from /v1/models)
    context_window: int
    # Where context_window came from: "configured", "preset" (until the server says), or the
    # server's own report ("server /v1/models", "server /props"); the dry run shows it.
    window_source: str = "preset"
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    supports_reasoning_echo: bool = False
    drop_empty_tool_content: bool = False
    # A configured ``local`` provider or a loopback URL: timeouts are not retried (the server
    # may still be generating the abandoned answer) and HTML-escaped echoes are undone.
    local: bool = False

    def model_for(self, role: str) -> str:
        if role in self.models:
            return self.models[role]
        # An unknown role uses the coder's model: it is the one every preset defines first.
        return self.models.get("coder", "")

    def __str__(self) -> str:
        return describe_provider(self)

    def public_dict(self) -> dict[str, Any]:
        """Everything but the key, JSON-ready (transcripts, --dry-run --json); never asdict()."""
        return {
            "name": self.name,
            "base_url": self.base_url,
            "api_key_env": self.api_key_env,
            "models": dict(self.models),
            "context_window": self.context_window,
            "window_source": self.window_source,
            "local": self.local,
            "extra_body": dict(self.extra_body),
        }


def describe_provider(provider: ProviderConfig) -> str:
    """One line for --dry-run and logs: where, which models, where the key comes from; no key."""
    models = ", ".join(
        f"{role}={name or '(server default)'}" for role, name in sorted(provider.models.items())
    )
    key = f"key from {provider.api_key_env}" if provider.api_key_env else "no key"
    extra = f", extra_body keys {sorted(provider.extra_body)}" if provider.extra_body else ""
    return (
        f"{provider.name} at {provider.base_url} ({key}); models: {models}; "
        f"context window {provider.context_window:,} tokens ({window_origin(provider)}){extra}"
    )


def window_origin(provider: ProviderConfig) -> str:
    """Where the window came from, in words for the dry run and logs."""
    if provider.window_source == "configured":
        return "configured: model.context_window"
    if provider.window_source == "preset":
        return f"the {provider.name} preset; the server's /v1/models is asked once at run time"
    return f"reported by the {provider.window_source}"


def is_loopback_url(base_url: str) -> bool:
    host = (urlparse(base_url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _preset_for_url(base_url: str) -> str:
    """A base URL that points at a known provider's host gets that provider's quirks."""
    host = (urlparse(base_url).hostname or "").lower()
    for name, preset in PRESETS.items():
        preset_host = urlparse(preset.base_url).hostname
        if preset_host and host == preset_host:
            return name
    return "local"


def _detect(base_url: str, env: Mapping[str, str]) -> str:
    if base_url:
        return _preset_for_url(base_url)
    for name in _DETECT_ORDER:
        if env.get(PRESETS[name].key_env):
            return name
    raise ConfigError(NO_PROVIDER_MESSAGE)


def _api_key(preset: Preset, settings: Settings, env: Mapping[str, str]) -> tuple[str, str]:
    """(key, variable it came from). Order: model.api_key_env, LSP_AGENT_API_KEY, preset var.

    A configured ``api_key_env`` replaces the preset's variable: a gateway key named on purpose
    must not silently fall back to a provider key.
    """
    named = settings.model.api_key_env
    for var in (named, ENV_API_KEY, "" if named else preset.key_env):
        if var and env.get(var):
            return env[var], var
    if not preset.key_env and not named:
        return LOCAL_PLACEHOLDER_KEY, ""
    raise ConfigError(
        f"provider {preset.name} needs an API key: set {named or preset.key_env} "
        f"(or {ENV_API_KEY}) in the environment of lsp-agent"
    )


def resolve_provider(settings: Settings, env: Mapping[str, str] | None = None) -> ProviderConfig:
    """Settings + environment -> ProviderConfig, or a ConfigError that says what to set."""
    env = os.environ if env is None else env
    model = settings.model
    base_url = model.base_url or env.get(ENV_BASE_URL, "")
    name = model.provider or _detect(base_url, env)
    if name not in PRESETS:
        raise ConfigError(f"unknown provider {name!r}: use one of {', '.join(PRESETS)}")
    preset = PRESETS[name]
    base_url = (base_url or preset.base_url).rstrip("/")
    if not base_url:
        raise ConfigError(
            f"provider {name} needs a base URL: set {ENV_BASE_URL} (e.g. "
            "http://127.0.0.1:11434/v1 for Ollama, http://127.0.0.1:8000/v1 for vLLM) or "
            "`base_url` in ~/.config/lsp-agent/config.toml / lspAgent.baseUrl"
        )
    if urlparse(base_url).scheme not in ("http", "https"):
        raise ConfigError(f"base URL {base_url!r} must start with http:// or https://")
    api_key, key_env = _api_key(preset, settings, env)

    default_model = model.model or env.get(ENV_MODEL, "")
    models = {
        role: model.role_models.get(role) or default_model or preset.models.get(role, "")
        for role in ROLES
    }
    extra_body: dict[str, Any] = dict(preset.thinking_body) if model.thinking else {}
    extra_body.update(model.extra_body)
    return ProviderConfig(
        name=name,
        base_url=base_url,
        api_key=api_key,
        api_key_env=key_env,
        models=models,
        context_window=model.context_window or preset.context_window,
        window_source="configured" if model.context_window else "preset",
        extra_body=extra_body,
        supports_reasoning_echo=preset.echo_reasoning,
        drop_empty_tool_content=preset.drop_empty_tool_content,
        local=name == "local" or is_loopback_url(base_url),
    )


# -- what providers require of requests -------------------------------------------------------
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _check_schema(schema: Any, where: str, problems: list[str]) -> None:
    if not isinstance(schema, Mapping):
        problems.append(f"{where} must be an object")
        return
    # Kimi rejects any property without a "type"; the others accept it, so require it everywhere.
    if "type" not in schema:
        problems.append(f'{where} has no "type"')
    for name, sub in (schema.get("properties") or {}).items():
        _check_schema(sub, f"{where}.{name}", problems)
    if "items" in schema:
        _check_schema(schema["items"], f"{where}[]", problems)


def validate_tool_schemas(tools: Sequence[Mapping[str, Any]]) -> None:
    """Raise ValueError listing every problem in function-tool schemas (checked before sending)."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(tool, Mapping) or tool.get("type") != "function" or not function:
            problems.append(f'tools[{i}] must be {{"type": "function", "function": {{...}}}}')
            continue
        name = str(function.get("name", ""))
        if not _TOOL_NAME.match(name):
            problems.append(f"tools[{i}] name {name!r} must match {_TOOL_NAME.pattern}")
        elif name in seen:
            problems.append(f"tool {name!r} is defined twice")
        seen.add(name)
        params = function.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(params, Mapping) or params.get("type") != "object":
            problems.append(f'{name}.parameters must be a JSON schema with "type": "object"')
            continue
        for prop, sub in (params.get("properties") or {}).items():
            _check_schema(sub, f"{name}.{prop}", problems)
    if problems:
        raise ValueError("invalid tool schemas: " + "; ".join(problems))


def prepare_messages(
    messages: Sequence[Mapping[str, Any]], provider: ProviderConfig
) -> list[dict[str, Any]]:
    """Adapt assistant turns to the provider; other messages pass through as the same objects.

    ``reasoning_content`` goes back only on tool-call turns of providers that require it
    (DeepSeek V4) and is dropped elsewhere; Kimi gets no empty ``content`` on tool-call turns.
    """
    prepared: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") != "assistant":
            prepared.append(message)  # type: ignore[arg-type]
            continue
        has_calls = bool(message.get("tool_calls"))
        drop_reasoning = "reasoning_content" in message and not (
            has_calls and provider.supports_reasoning_echo
        )
        drop_content = has_calls and provider.drop_empty_tool_content and not message.get("content")
        if drop_reasoning or drop_content:
            message = {
                key: value
                for key, value in message.items()
                if not (key == "reasoning_content" and drop_reasoning)
                and not (key == "content" and drop_content)
            }
        prepared.append(message)  # type: ignore[arg-type]
    return prepared
