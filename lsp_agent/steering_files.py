"""Files that steer other tools: CI pipelines, editor and IDE settings, hooks that run commands.

A change to one of them runs code or changes behaviour somewhere the user is not looking (a
workflow runs with the repository's secrets on the next push; ``.vscode/settings.json`` picks
the interpreter; ``.envrc`` and pre-commit hooks execute on the user's machine). Edits to them
are never applied without the user confirming them: the server marks them
``needsConfirmation`` (handlers/apply_edit.py). The rule lives here, once, for every caller.
"""

from __future__ import annotations

from pathlib import PurePosixPath

# (kind, folder prefixes, file names at any depth or exact root paths)
_FOLDERS: dict[str, tuple[str, ...]] = {
    "CI configuration": (
        ".github/",  # workflows, actions, dependabot, CODEOWNERS
        ".gitlab/",
        ".circleci/",
        ".buildkite/",
        ".woodpecker/",
        ".azure-pipelines/",
        ".teamcity/",
    ),
    "editor configuration": (
        ".vscode/",
        ".idea/",
        ".devcontainer/",
        ".helix/",
        ".zed/",
        ".fleet/",
        ".theia/",
    ),
    "git configuration": (".git/", ".husky/", ".githooks/"),
}
_NAMES: dict[str, tuple[str, ...]] = {
    "CI configuration": (
        ".gitlab-ci.yml",
        ".travis.yml",
        "azure-pipelines.yml",
        "bitbucket-pipelines.yml",
        ".drone.yml",
        ".woodpecker.yml",
        "appveyor.yml",
        ".appveyor.yml",
        "Jenkinsfile",
        "cloudbuild.yaml",
        "cloudbuild.yml",
        "buildspec.yml",
    ),
    "editor configuration": (
        ".nvim.lua",
        ".nvimrc",
        ".exrc",
        ".dir-locals.el",
        ".dir-locals-2.el",
        ".editorconfig",
    ),
    "git configuration": (".gitattributes", ".gitmodules", ".pre-commit-config.yaml"),
    "shell environment": (".envrc",),
    "lsp-agent configuration": (".lsp-agent.toml",),
}
_EDITOR_SUFFIXES = (".code-workspace", ".sublime-project")


def steering_kind(path: str) -> str | None:
    """What ``path`` (root-relative POSIX) configures when it steers another tool, else None.

    Folder rules apply at the root only (``.github/`` there is GitHub's; ``docs/.github/`` is
    not); name rules at any depth, since those tools read them from nested folders too."""
    rel = PurePosixPath(path).as_posix().lstrip("/")
    for kind, folders in _FOLDERS.items():
        if any(rel.startswith(folder) for folder in folders):
            return kind
    name = PurePosixPath(rel).name
    for kind, names in _NAMES.items():
        if name in names:
            return kind
    if name.endswith(_EDITOR_SUFFIXES):
        return "editor configuration"
    return None
