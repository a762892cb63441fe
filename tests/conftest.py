"""Fixtures shared by every test tier; see harness/ for the real infrastructure."""

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from harness.paths import FACES_DIR
from harness.servers import fresh_database, fresh_vhost, remove_database, remove_vhost
from services.common.db import create_engine
from services.common.settings import DatabaseSettings

# Chromium fixtures, once for every tier that drives the dashboard (session-scoped: one browser).
from tests.support.browser import browser, page, page_errors  # noqa: F401

# Enrollment photos encoded once, not 10 times: the tests prove behaviour, and the accuracy
# re-sampling buys is measured by the calibration and evaluation commands (README).
os.environ.setdefault("RECOGNIZER_ENROLL_JITTERS", "1")

TIERS = {"integration": "integration", "e2e": "e2e", "browser": "browser", "contract": "contract"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its tier folder, so `-m "not e2e"` and the like select tiers."""
    for item in items:
        for folder, marker in TIERS.items():
            if f"/tests/{folder}/" in str(item.path):
                item.add_marker(marker)


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh database with the schema loaded, dropped afterwards."""
    url = fresh_database()
    yield url
    remove_database(url)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(DatabaseSettings(database_url=database_url))
    yield engine
    engine.dispose()


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A fresh RabbitMQ vhost (its own exchanges and queues), deleted afterwards."""
    vhost, url = fresh_vhost()
    yield url
    remove_vhost(vhost)


@pytest.fixture(scope="session")
def faces_dir():  # type: ignore[no-untyped-def]
    if not FACES_DIR.is_dir():
        pytest.fail(f"the shared faces are not at {FACES_DIR}; set FACES_DIR")
    return FACES_DIR
