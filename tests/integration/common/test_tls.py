"""TLS to the broker and MySQL for real (workers on other machines). The shared RabbitMQ has
no TLS listener, so a real TLS handshake happens in front of it (tests/support/proxy.py,
TlsForwarder) with a certificate of a test CA; the shared MariaDB has TLS off, which shows
that DATABASE_CA_FILE requires TLS rather than preferring it."""

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.common.amqp import broker_reachable
from services.common.amqp.connection import connect, declare_topology
from services.common.db import create_engine
from services.common.settings import BrokerSettings, DatabaseSettings
from tests.support.proxy import TlsForwarder
from tests.support.tls import Certificates, make_certificates


def server_context(certificates: Certificates) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert_file, certificates.key_file)
    return context


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path / "central", "localhost")


@pytest.fixture
def tls_broker(certificates: Certificates) -> Iterator[TlsForwarder]:
    forwarder = TlsForwarder("127.0.0.1", 5672, server_context(certificates))
    yield forwarder
    forwarder.close()


def amqps(amqp_url: str, host: str, port: int) -> str:
    """The test's vhost and guest login (the forwarder connects from loopback), over TLS."""
    vhost = amqp_url.rsplit("/", 1)[1]
    return f"amqps://guest:guest@{host}:{port}/{vhost}"


def test_amqps_with_the_ca_file_reaches_the_broker_through_a_real_handshake(
    amqp_url: str, tls_broker: TlsForwarder, certificates: Certificates
) -> None:
    settings = BrokerSettings(
        amqp_url=amqps(amqp_url, "localhost", tls_broker.port), amqp_ca_file=certificates.ca_file
    )
    declare_topology(settings, "tls-test")  # a whole AMQP conversation, declarations included
    connection = connect(settings, "tls-test", timeout_s=5)
    try:
        assert connection.is_open
        [transport] = [connection._impl._transport]
        assert transport._sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        connection.close()
    assert tls_broker.clients == ["127.0.0.1", "127.0.0.1"]


def test_amqps_refuses_a_broker_signed_by_another_ca(
    amqp_url: str, tls_broker: TlsForwarder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stranger = make_certificates(tmp_path / "stranger", "localhost", ca_name="someone else's CA")
    settings = BrokerSettings(
        amqp_url=amqps(amqp_url, "localhost", tls_broker.port), amqp_ca_file=stranger.ca_file
    )
    assert not broker_reachable(settings, timeout_s=5, name="tls-test")
    assert "unable to get local issuer certificate" in caplog.text
    assert tls_broker.clients == []  # no handshake completed


def test_amqps_refuses_a_certificate_for_another_name(
    amqp_url: str, tls_broker: TlsForwarder, certificates: Certificates, caplog: pytest.LogCaptureFixture
) -> None:
    # The same server, reached as 127.0.0.1: its certificate names "localhost" only.
    settings = BrokerSettings(
        amqp_url=amqps(amqp_url, "127.0.0.1", tls_broker.port), amqp_ca_file=certificates.ca_file
    )
    assert not broker_reachable(settings, timeout_s=5, name="tls-test")
    assert "IP address mismatch" in caplog.text
    assert tls_broker.clients == []


def test_amqps_without_the_ca_file_does_not_trust_a_private_ca(
    amqp_url: str, tls_broker: TlsForwarder
) -> None:
    settings = BrokerSettings(amqp_url=amqps(amqp_url, "localhost", tls_broker.port))
    assert not broker_reachable(settings, timeout_s=5, name="tls-test")


def test_a_database_ca_file_means_tls_or_nothing(database_url: str, certificates: Certificates) -> None:
    plain = create_engine(DatabaseSettings(database_url=database_url))
    with plain.connect() as connection:
        assert connection.execute(sa.text("SHOW VARIABLES LIKE 'have_ssl'")).one()[1] == "DISABLED"
    plain.dispose()
    engine = create_engine(DatabaseSettings(database_url=database_url, database_ca_file=certificates.ca_file))
    with pytest.raises(sa.exc.OperationalError, match="SSL is required"), engine.connect():
        pass
    engine.dispose()
