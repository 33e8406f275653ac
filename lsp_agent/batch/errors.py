"""Errors the batch command turns into exit code 2 with their message."""

from __future__ import annotations


class UsageError(Exception):
    """Bad arguments or input files; the message says what to change."""
