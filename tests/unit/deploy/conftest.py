"""Fixtures of the deployment tests: the resolved compose model, computed once per module."""

from typing import Any

import pytest

from tests.unit.deploy import support


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return support.resolved_config(tmp_path_factory.mktemp("compose"))


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = config["services"]
    return result
