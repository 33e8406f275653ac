"""A settings change gives the next task a new model client; the replaced one is closed once
the last task using it is done (its HTTP pool), never while a task still uses it."""

from __future__ import annotations

import pytest

from lsp_agent.agents.client import OpenAIChatClient
from lsp_agent.config import ConfigError, Settings, merge_settings
from lsp_agent.handlers.model_clients import ModelClients
from tests.support.scripted_model import ScriptedModel


def _settings(url: str) -> Settings:
    settings, _ = merge_settings(Settings(), {"model": {"base_url": url, "model": "scripted"}})
    return settings


async def test_a_replaced_client_is_closed_after_its_last_task() -> None:
    reply = {"match": {}, "reply": {"content": "hi"}}
    with ScriptedModel([reply]) as model:
        clients = ModelClients()
        first_settings = _settings(model.url)
        old = clients.acquire(first_settings)
        assert isinstance(old, OpenAIChatClient)
        await old.complete(role="coder", messages=[{"role": "user", "content": "x"}])
        assert old._sdk is not None  # a live connection pool
        second = clients.acquire(first_settings)  # same settings: the same client
        assert second is old
        new = clients.acquire(_settings(model.url + "/"))  # the user changed a setting
        assert new is not old
        assert clients.release(old) is None  # one task still uses it
        retired = clients.release(old)
        assert retired is old
        await retired.aclose()
        assert old._sdk is None
        assert clients.release(new) is None  # the current one is never closed on release
        assert clients.drain() == [new]


def test_a_bad_new_configuration_keeps_the_current_client() -> None:
    calls: list[Settings] = []

    def make(settings: Settings) -> object:
        calls.append(settings)
        if len(calls) == 2:
            raise ConfigError("no model configured")
        return object()

    clients = ModelClients(make)
    current = clients.acquire(Settings())
    with pytest.raises(ConfigError):
        clients.acquire(Settings())
    assert clients.drain() == [current]
