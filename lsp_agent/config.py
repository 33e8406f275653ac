"""Settings and their sources.

Precedence, lowest first: built-in defaults < user config file (``$XDG_CONFIG_HOME/lsp-agent/
config.toml``) < workspace file (``.lsp-agent.toml`` at the root) < environment variables
(``LSP_AGENT_*``) < explicit overrides (CLI flags, LSP ``initializationOptions`` and
``workspace/configuration``). API keys are read from the environment only, never from a file or
an editor setting, so they cannot leak into settings.json or a journal.

Trust: a cloned repository must not decide where requests go or which credentials they carry.
The ``STEERING`` settings are refused from a workspace file (with a warning naming them) unless
the user's own config lists that workspace in ``trusted_workspaces``; that list itself is read
from the user config file only. ``workspace_trusted`` is the one decision, for every caller.

Invalid values never crash: they fall back to the default and produce a warning string that the
caller shows (stderr for the CLI, ``window/showMessage`` for the server).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

ROLES = ("researcher", "coder", "reviewer", "debugger")
# Roles that were configurable once and are not model roles: still read (a user's config or
# LSP_AGENT_SYNTHESIZER_MODEL must not break), dropped with a deprecation warning saying why.
RETIRED_ROLES: Mapping[str, str] = {
    "synthesizer": "the merge of the coders' edits is code, not a model",
}
PROVIDERS = ("deepseek", "moonshot", "openai", "local")


@dataclass(frozen=True)
class ModelSettings:
    """Which OpenAI-compatible endpoint to talk to. Model names are configuration, not code."""

    provider: str = ""  # one of PROVIDERS; "" = auto-detect from which key is set
    base_url: str = ""  # overrides the preset's URL
    model: str = ""  # default model for every role
    role_models: Mapping[str, str] = field(default_factory=dict)  # role -> model
    api_key_env: str = ""  # name of the env var that holds the key (overrides the preset's)
    context_window: int = 0  # tokens; 0 = the preset's window for the model
    timeout_s: float = 120.0
    max_retries: int = 4
    concurrency: int = 8  # simultaneous requests to the endpoint
    thinking: bool = False  # ask thinking models to think (provider-specific extra_body)
    extra_body: Mapping[str, Any] = field(default_factory=dict)  # passed through verbatim


@dataclass(frozen=True)
class IndexSettings:
    ignore: tuple[str, ...] = ()  # extra gitignore-style patterns (negations re-include)
    use_gitignore: bool = True  # False (--no-ignore): .gitignore and .git/info/exclude unused
    max_files: int = 300_000  # a tree with more files is refused: the wrong root (/, ~, a disk)
    max_file_bytes: int = 1024 * 1024
    jobs: int = 0  # worker processes for cold indexing; 0 = all cores


@dataclass(frozen=True)
class ContextSettings:
    budget: int = 0  # snapshot tokens; 0 = derived from the model's context window
    reserve: int = 16_384  # tokens kept free for instructions and output
    churn_threshold: float = 0.10  # rebuild the prefix when stale tokens pass this share


@dataclass(frozen=True)
class BudgetSettings:
    """Hard limits per task; exceeding one ends the task with no edits applied."""

    max_steps: int = 24  # model turns per agent
    max_tokens: int = 2_000_000  # prompt + completion tokens per task
    max_seconds: float = 900.0
    review_rounds: int = 2
    apply_rounds: int = 3  # retries for a coder whose edit blocks do not apply
    # What a cached prompt token counts for in max_tokens (0..1); 0 = the model's price ratio
    # (agents/pricing.py: cached input / input), 1.0 for a model with no known price.
    cached_token_weight: float = 0.0


@dataclass(frozen=True)
class GoalSettings:
    """Goal runs (lsp_agent/goals): how long they persist before stopping."""

    max_revisions: int = 4  # plan revisions after failed steps, per run
    stuck_window: int = 4  # step attempts in a row without a finished step = stuck
    outage_wait_s: float = 1800.0  # a provider outage is waited out this long, then the run pauses
    outage_backoff_s: float = 5.0  # first wait after a step lost to an outage (doubles, max 5 min)


@dataclass(frozen=True)
class VerifySettings:
    """The project's own checks, run in a sandbox on a scratch copy (lsp_agent/verify/)."""

    enabled: bool = True
    # [{name, command = str | [str], kind = "test" | "lint"}, ...] (verify.checks.parse_commands;
    # the older table name -> command | {command, kind} is read as that list); empty = detect
    commands: tuple[Mapping[str, Any], ...] = ()
    timeout: float = 300.0  # seconds per command
    max_output: int = 4 << 20  # bytes of output per command before it is stopped
    rounds: int = 2  # debugger -> coders revisions while checks fail
    sandbox: str = "bwrap"  # "bwrap" | "none" (running checks unsandboxed: user config only)


@dataclass(frozen=True)
class JournalSettings:
    """How long finished tasks (and their transcripts) are kept (``lsp-agent tasks --prune``;
    the server prunes when it opens a folder, the batch command after a run)."""

    keep_tasks: int = 1000  # newest finished tasks kept per workspace; 0 = no count limit
    keep_days: float = 90.0  # finished tasks older than this go; 0 = no age limit


@dataclass(frozen=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    budgets: BudgetSettings = field(default_factory=BudgetSettings)
    goals: GoalSettings = field(default_factory=GoalSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)
    journal: JournalSettings = field(default_factory=JournalSettings)
    confirm_edits: bool = False  # mark workspace edits needsConfirmation (editor preview)
    jobs: int = 4  # parallel tasks in the batch command
    # model name (or "*") -> {input, cached_input, output} USD per million tokens; overrides
    # the presets in agents/pricing.py, which validates it
    pricing: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # Folders (absolute or ~) whose workspace file may set STEERING settings, and whose
    # proposed commands may run; a folder trusts everything below it. User config file only.
    trusted_workspaces: tuple[str, ...] = ()


class ConfigError(Exception):
    """A configuration problem the user must fix; the message says how."""


_SECTIONS: dict[str, type] = {
    "model": ModelSettings,
    "index": IndexSettings,
    "context": ContextSettings,
    "budgets": BudgetSettings,
    "goals": GoalSettings,
    "verify": VerifySettings,
    "journal": JournalSettings,
}
# Flat aliases accepted at the top level (editor settings are flat: lspAgent.provider, ...).
_TOP_LEVEL_ALIASES: dict[str, tuple[str, str]] = {
    "provider": ("model", "provider"),
    "model": ("model", "model"),  # a plain string; an object is the [model] section
    "base_url": ("model", "base_url"),
    "models": ("model", "role_models"),
    "context_budget": ("context", "budget"),
    "context_window": ("model", "context_window"),
    "ignore": ("index", "ignore"),
}


# Settings that decide where requests go or which credentials they carry. A workspace file may
# set them only in a trusted workspace; anything added here that carries a host, a header or a
# key variable belongs in this set.
STEERING: frozenset[str] = frozenset(
    {"model.provider", "model.base_url", "model.api_key_env", "model.extra_body"}
)
# Commands a workspace file proposes to run (in the sandbox): only in a trusted workspace, like
# STEERING; detected checks need no trust. Kept apart from STEERING, which is also the editors'
# contract (their gates cover the model settings only).
PROPOSED_COMMANDS: frozenset[str] = frozenset({"verify.commands"})
# Settings only the user config file may set (a workspace or an editor could trust itself).
# verify.sandbox = "none" runs the project's code unsandboxed.
USER_CONFIG_ONLY: frozenset[str] = frozenset({"trusted_workspaces", "verify.sandbox"})
WORKSPACE_FILE = ".lsp-agent.toml"


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower().replace("-", "_")


def _coerce(value: Any, default: Any, name: str) -> Any:
    """Convert a loosely typed value (JSON, TOML, env string) to the type of ``default``."""
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, bool):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a whole number, got {value!r}") from None
        if number < 0:
            raise ValueError(f"{name} must not be negative, got {number}")
        return number
    if isinstance(default, float):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {value!r}") from None
        if number < 0:
            raise ValueError(f"{name} must not be negative, got {number}")
        return number
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a list of strings, got {value!r}")
        return tuple(value)
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise ValueError(f"{name} must be an object, got {value!r}")
        return dict(value)
    return value


def _check_verify(section: Mapping[str, Any]) -> None:
    """ValueError for the first bad ``[verify]`` entry (verify.checks.verify_problems)."""
    from lsp_agent.verify.checks import verify_problems

    for problem in verify_problems(section).values():
        raise ValueError(problem)


def _verify_layer(
    source: str, layer: Mapping[str, Any], refused: Mapping[str, str] | None, problems: list[str]
) -> Mapping[str, Any]:
    """``layer`` without the ``[verify]`` entries that are wrong (each a problem naming
    ``source``), so the CLI exits 2 naming the key and the server warns and keeps the default.
    Entries this source may not set are left to the refusal."""
    from lsp_agent.verify.checks import verify_problems

    section = layer.get("verify")
    if not isinstance(section, Mapping):
        return layer
    allowed = {k: v for k, v in section.items() if f"verify.{_snake(k)}" not in (refused or {})}
    bad = verify_problems(allowed)
    if not bad:
        return layer
    problems.extend(f"{source}: {message}" for message in bad.values())
    return {**layer, "verify": {k: v for k, v in section.items() if k not in bad}}


def _validate(settings: Settings) -> None:
    model = settings.model
    if model.provider and model.provider not in PROVIDERS:
        raise ValueError(
            f"model.provider must be one of {', '.join(PROVIDERS)}, got {model.provider!r}"
        )
    unknown_roles = sorted(set(model.role_models) - set(ROLES))
    if unknown_roles:
        raise ValueError(f"models has unknown roles {unknown_roles}; roles are {list(ROLES)}")
    if settings.verify.sandbox not in ("bwrap", "none"):
        sandbox = settings.verify.sandbox
        raise ValueError(f"verify.sandbox must be 'bwrap' or 'none', got {sandbox!r}")
    if settings.budgets.cached_token_weight > 1:
        raise ValueError("budgets.cached_token_weight must be between 0 and 1")
    if not 0 < settings.context.churn_threshold <= 1:
        raise ValueError("context.churn_threshold must be in (0, 1]")
    from lsp_agent.agents.pricing import validate_pricing

    validate_pricing(settings.pricing)


def merge_settings(
    base: Settings,
    data: Mapping[str, Any],
    *,
    refused: Mapping[str, str] | None = None,
) -> tuple[Settings, list[str]]:
    """Overlay ``data`` (camelCase or snake_case, nested or flat) on ``base``.

    ``refused`` maps dotted setting names (``model.base_url``) to why this source may not set
    them; the default refuses ``USER_CONFIG_ONLY`` (every source but the user config file).
    Returns the new settings and a warning per rejected value; rejected values keep the base.
    """
    if refused is None:
        refused = user_config_only_refusals()
    warnings: list[str] = []
    refusals: dict[str, list[str]] = {}
    sections = {name: dataclasses.asdict(getattr(base, name)) for name in _SECTIONS}
    top: dict[str, Any] = {
        f.name: getattr(base, f.name)
        for f in dataclasses.fields(Settings)
        if f.name not in _SECTIONS
    }

    def put(section: str | None, key: str, value: Any) -> None:
        target = sections[section] if section else top
        where = f"{section}.{key}" if section else key
        if key not in target:
            warnings.append(f"unknown setting {where!r} ignored")
            return
        if where in refused:
            names = refusals.setdefault(refused[where], [])
            if where not in names:
                names.append(where)
            return
        default = getattr(getattr(base, section), key) if section else getattr(base, key)
        try:
            if section == "verify":
                _check_verify({key: value})
            if where == "verify.commands":
                from lsp_agent.verify.checks import parse_commands

                target[key] = parse_commands(value)
            else:
                target[key] = _coerce(value, default, where)
        except ValueError as exc:
            warnings.append(f"{exc}; using {default!r}")

    for raw_key, value in data.items():
        key = _snake(raw_key)
        if key in _SECTIONS and isinstance(value, Mapping):
            for raw_sub, sub_value in value.items():
                put(key, _snake(raw_sub), sub_value)
        elif key in _TOP_LEVEL_ALIASES:
            put(*_TOP_LEVEL_ALIASES[key], value)
        else:
            put(None, key, value)
    warnings.extend(f"{', '.join(names)} {reason}" for reason, names in refusals.items())

    retired = sorted(set(sections["model"]["role_models"]) & set(RETIRED_ROLES))
    if retired:
        role_models = dict(sections["model"]["role_models"])
        for role in retired:
            del role_models[role]
            warnings.append(
                f"models.{role} (LSP_AGENT_{role.upper()}_MODEL) is deprecated and ignored: "
                f"{RETIRED_ROLES[role]}; remove it"
            )
        sections["model"]["role_models"] = role_models
    candidate = Settings(
        **{name: cls(**sections[name]) for name, cls in _SECTIONS.items()},
        **top,
    )
    try:
        _validate(candidate)
    except ValueError as exc:
        warnings.append(f"{exc}; keeping the previous settings")
        return base, warnings
    return candidate, warnings


_ENV_KEYS: dict[str, tuple[str, str]] = {
    "LSP_AGENT_PROVIDER": ("model", "provider"),
    "LSP_AGENT_BASE_URL": ("model", "base_url"),
    "LSP_AGENT_MODEL": ("model", "model"),
    "LSP_AGENT_CONTEXT_WINDOW": ("model", "context_window"),
    "LSP_AGENT_CONTEXT_BUDGET": ("context", "budget"),
    "LSP_AGENT_CONCURRENCY": ("model", "concurrency"),
    "LSP_AGENT_TIMEOUT": ("model", "timeout_s"),
}


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, dict[str, Any]] = {}
    for var, (section, key) in _ENV_KEYS.items():
        if env.get(var):
            data.setdefault(section, {})[key] = env[var]
    for role in (*ROLES, *RETIRED_ROLES):  # a retired one is read to be warned about
        var = f"LSP_AGENT_{role.upper()}_MODEL"
        if env.get(var):
            data.setdefault("model", {}).setdefault("role_models", {})[role] = env[var]
    return data


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    """The file's table; {} when it does not exist. A file that cannot be read, is not text
    (UTF-8, or UTF-16 with a BOM) or is not TOML adds a problem naming it and gives {}."""
    from lsp_agent.textfiles import NotText, read_text

    try:
        return tomllib.loads(read_text(path))
    except FileNotFoundError:
        return {}
    except NotText as exc:
        problems.append(str(exc))
    except OSError as exc:
        problems.append(f"{path}: cannot read it: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: not valid TOML: {exc}")
    return {}


def _without_provider(layer: Mapping[str, Any]) -> dict[str, Any]:
    rest = {k: v for k, v in layer.items() if k != "provider"}
    if isinstance(rest.get("model"), Mapping):
        rest["model"] = {k: v for k, v in rest["model"].items() if k != "provider"}
    return rest


def _unknown_provider(layer: Mapping[str, Any]) -> str | None:
    """The provider a settings layer names when it is not one we have, else None."""
    model = layer.get("model")
    value = model.get("provider") if isinstance(model, Mapping) else None
    value = layer.get("provider", value)
    if isinstance(value, str) and value and value not in PROVIDERS:
        return value
    return None


def _checked_provider(
    source: str, layer: Mapping[str, Any], problems: list[str]
) -> Mapping[str, Any]:
    """``layer`` without a provider that does not exist (a problem naming ``source``)."""
    unknown = _unknown_provider(layer)
    if unknown is None:
        return layer
    problems.append(
        f"{source}: provider {unknown!r} does not exist; the providers are {', '.join(PROVIDERS)}"
    )
    return _without_provider(layer)


def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir("lsp-agent")) / "config.toml"


def user_config_only_refusals() -> dict[str, str]:
    reason = f"ignored: only the user config file ({user_config_path()}) may set it"
    return dict.fromkeys(USER_CONFIG_ONLY, reason)


def workspace_trusted(root: Path, settings: Settings) -> bool:
    """True when ``settings.trusted_workspaces`` (from the user config file only) lists
    ``root`` or a folder above it. Symlinks are resolved on both sides; relative entries
    never match (they would depend on the current directory)."""
    return trusted_by(root, settings) is not None


def trusted_by(root: Path, settings: Settings) -> str | None:
    """The ``trusted_workspaces`` entry that trusts ``root``, or None (``workspace_trusted``)."""
    try:
        resolved = root.resolve()
    except OSError:
        return None
    for entry in settings.trusted_workspaces:
        path = Path(entry).expanduser()
        if not path.is_absolute():
            continue
        try:
            trusted = path.resolve()
        except OSError:
            continue
        if resolved == trusted or trusted in resolved.parents:
            return entry
    return None


def workspace_steering(root: Path) -> list[str]:
    """The STEERING settings the workspace file of ``root`` sets (honoured only if trusted)."""
    data = _read_toml(root / WORKSPACE_FILE, [])
    merged, _ = merge_settings(Settings(), data, refused={})
    default = Settings()
    return sorted(
        name
        for name in STEERING
        if getattr(getattr(merged, name.split(".")[0]), name.split(".")[1])
        != getattr(getattr(default, name.split(".")[0]), name.split(".")[1])
    )


def workspace_refusals(root: Path, settings: Settings) -> dict[str, str]:
    """What the workspace file of ``root`` may not set, given the user's own settings."""
    refused = user_config_only_refusals()
    if not workspace_trusted(root, settings):
        reason = (
            f"in {root / WORKSPACE_FILE} ignored: this workspace is not trusted to choose the "
            f"model endpoint, credentials or commands to run (list {str(root.resolve())!r} in "
            f"trusted_workspaces in {user_config_path()} to allow it)"
        )
        refused.update(dict.fromkeys(STEERING | PROPOSED_COMMANDS, reason))
    return refused


def load_settings(
    root: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    strict: bool = False,
) -> tuple[Settings, list[str]]:
    """Merge every source in precedence order; returns the settings and the warnings.

    The workspace file of ``root`` is filtered by ``workspace_refusals``; the environment and
    ``overrides`` (command line, editor) are the user's own and may set ``STEERING``.

    A config file that cannot be read or parsed, and a provider that does not exist (where the
    source may set one), are problems: with ``strict`` (the CLI) the first raises ConfigError
    naming its source; without (the server, which must start anyway) it is a warning and that
    source (or just its provider) is skipped."""
    env = os.environ if env is None else env
    warnings: list[str] = []
    problems: list[str] = []
    user_path = user_config_path()
    user_layer = _checked_provider(str(user_path), _read_toml(user_path, problems), problems)
    user_layer = _verify_layer(str(user_path), user_layer, None, problems)
    settings, user_warnings = merge_settings(Settings(), user_layer, refused={})
    warnings.extend(user_warnings)
    relative = [e for e in settings.trusted_workspaces if not Path(e).expanduser().is_absolute()]
    if relative:
        warnings.append(f"trusted_workspaces entries must be absolute paths; ignored: {relative}")
    layers: list[tuple[str, Mapping[str, Any], dict[str, str] | None]] = []
    if root is not None:
        path = root / WORKSPACE_FILE
        layers.append((str(path), _read_toml(path, problems), workspace_refusals(root, settings)))
    layers.append(("the environment (LSP_AGENT_PROVIDER)", _env_overrides(env), None))
    if overrides:
        layers.append(("the command line or editor settings", overrides, None))
    for source, layer, refused in layers:
        if not (refused and "model.provider" in refused):
            layer = _checked_provider(source, layer, problems)
        layer = _verify_layer(source, layer, refused, problems)
        settings, layer_warnings = merge_settings(settings, layer, refused=refused)
        warnings.extend(layer_warnings)
    if strict and problems:
        raise ConfigError(problems[0])
    return settings, [f"{p}; using the other settings" for p in problems] + warnings


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """The user cache directory (XDG); ``LSP_AGENT_CACHE_DIR`` overrides it (tests use it)."""
    env = os.environ if env is None else env
    if env.get("LSP_AGENT_CACHE_DIR"):
        return Path(env["LSP_AGENT_CACHE_DIR"])
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "lsp-agent"
    return Path(platformdirs.user_cache_dir("lsp-agent"))


def workspace_cache_dir(root: Path, env: Mapping[str, str] | None = None) -> Path:
    """One directory per workspace root: index database, snapshot prefix, task journal."""
    resolved = root.resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", resolved.name)[:40] or "root"
    return cache_root(env) / "workspaces" / f"{slug}-{digest}"
