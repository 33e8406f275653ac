"""Files whose content must never reach a model: the snapshot lists them by path at most."""

from __future__ import annotations

import fnmatch
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
    # posixpath.basename's own result, without its Python frames (a prefix asks for 78k paths)
    return _MATCH(path.rpartition("/")[2].lower()) is not None
