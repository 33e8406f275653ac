"""Results the server writes as they are: a JSON text encoded ahead of the reply."""

from __future__ import annotations


class EncodedResult(str):
    """A request's result already encoded as JSON. ``lspAgent/tasks`` builds its reply from
    per-task JSON kept with the journal's listing, so a poll of 200 tasks encodes only what
    changed; the protocol (server.py) writes it into the response without decoding it."""
