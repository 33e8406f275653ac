"""Verification: the project's own checks, run in a sandbox on a scratch copy of the workspace.

``scratch.py`` (scratch trees and git worktrees), ``sandbox.py`` (bubblewrap with limits),
``checks.py`` (which commands run: configured or detected), ``outcomes.py`` (failures parsed
from their output and trimmed), ``verifier.py`` (baseline vs after, the record a task keeps).
"""
