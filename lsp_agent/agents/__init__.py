"""Agents: the model client (the only openai importer), tools, roles, orchestrator."""
