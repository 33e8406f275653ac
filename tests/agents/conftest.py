"""Fixtures shared by the agents tests: a fresh scripted model server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.scripted_model import ScriptedModel


@pytest.fixture
def scripted() -> Iterator[ScriptedModel]:
    with ScriptedModel() as model:
        yield model


@pytest.fixture
def model(scripted: ScriptedModel) -> ScriptedModel:
    """The same server under the name the client tests use."""
    return scripted
