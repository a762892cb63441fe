"""`make run` gives each service its own MySQL and broker user (least privilege, issue 9) on
this machine's MariaDB and RabbitMQ, as compose does: a recognizer's password reads no account,
capture's publishes no identity event."""

import subprocess
import sys
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from harness.paths import ROOT
from services.common import db_grants, topology
from services.common.amqp import declare_topology
from services.common.settings import BrokerSettings

sys.path.insert(0, str(ROOT / "scripts"))
import run_local

pytestmark = pytest.mark.integration


@pytest.fixture
def cleanup() -> Iterator[None]:
    yield
    connection, _ = db_grants.admin_connection(f"{run_local.DatabaseSettings().database_url}")
    with connection.cursor() as cursor:
        for user in db_grants.USERNAMES.values():
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
    connection.close()
    for service in topology.SERVICES:
        subprocess.run(["rabbitmqctl", "delete_user", f"local-{service}"], capture_output=True, check=False)


def test_each_service_gets_its_own_database_and_broker_user(
    database_url: str, amqp_url: str, cleanup: None
) -> None:
    databases = run_local.database_users(database_url)
    declare_topology(BrokerSettings(amqp_url=amqp_url), "test")
    brokers = run_local.broker_users(amqp_url)
    assert set(databases) == set(db_grants.SERVICES) and set(brokers) == set(topology.SERVICES)

    recognizer = sa.create_engine(databases["recognizer"])
    try:
        with recognizer.connect() as connection:
            assert connection.execute(sa.text("SELECT COUNT(*) FROM face_encodings")).scalar() == 0
            with pytest.raises(OperationalError, match="denied"):
                connection.execute(sa.text("SELECT * FROM users"))
    finally:
        recognizer.dispose()

    connection = pika.BlockingConnection(pika.URLParameters(brokers["capture"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="ACCESS_REFUSED"):
            channel.basic_publish(topology.RECOGNIZER_EXCHANGE, topology.recognized_key("x"), b"{}")
    finally:
        connection.close()
