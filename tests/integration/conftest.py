from collections.abc import Iterator

import pytest

from tests.support.amqp import TestBroker


@pytest.fixture
def broker(amqp_url: str) -> Iterator[TestBroker]:
    broker = TestBroker(amqp_url)
    yield broker
    broker.close()
