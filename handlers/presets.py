"""The refactor presets offered as code actions: title and instruction, kept as data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str  # the value of the runTask argument "preset"
    title: str  # shown in the editor's code action menu
    instruction: str  # what the worker is asked to do
    kind: str  # TaskSpec.kind


FIX = Preset(
    "fix",
    "Fix with lsp-agent",
    "Fix the problems reported by these diagnostics. Change only what the fix needs.",
    "fix",
)

REFACTORS: tuple[Preset, ...] = (
    Preset(
        "simplify",
        "Simplify",
        "Simplify the selected code: remove duplication and needless complexity without "
        "changing its behaviour or public interface.",
        "refactor",
    ),
    Preset(
        "typeHints",
        "Add type hints",
        "Add precise type hints to the functions and variables in the selected code. "
        "Do not change behaviour.",
        "refactor",
    ),
    Preset(
        "docstrings",
        "Add docstrings",
        "Add concise docstrings to the functions and classes in the selected code that lack "
        "them, in the style the file already uses.",
        "refactor",
    ),
    Preset(
        "extractFunction",
        "Extract function",
        "Extract the selected code into a well-named function and call it from where the "
        "code was. Keep the behaviour identical.",
        "refactor",
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (FIX, *REFACTORS)}
