"""Files whose content must never reach a model: the snapshot lists them by path at most."""

from __future__ import annotations

import fnmatch
import posixpath
import re

_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.keystore",
    "*.jks",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    "credentials",
    "credentials.*",
    "secrets.*",
    "*.secret",
    "*.secrets",
    "*.tfvars",
)


_MATCH = re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in _PATTERNS)).match


def is_sensitive(path: str) -> bool:
    return _MATCH(posixpath.basename(path).lower()) is not None
