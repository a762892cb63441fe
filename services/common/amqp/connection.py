"""Opening connections: parameters, connect with backoff, the one-shot checks."""

import logging
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pika
from pika.adapters.blocking_connection import BlockingConnection

from services.common import topology
from services.common.amqp.errors import CONNECTION_ERRORS, declaring, refuse
from services.common.settings import BrokerSettings, redact
from services.common.transport import Backoff

logger = logging.getLogger("services.common.amqp")


def tls_options(settings: BrokerSettings, host: str) -> pika.SSLOptions:
    """TLS for an amqps:// URL: the broker's certificate must chain to AMQP_CA_FILE (or the
    system's CAs) and name `host`. pika's own default for amqps sets no server name, so with
    host-name checking on (the default context's) it could not connect at all."""
    cafile = str(settings.amqp_ca_file) if settings.amqp_ca_file is not None else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True  # create_default_context's already; stated, as it is the point
    context.verify_mode = ssl.CERT_REQUIRED
    return pika.SSLOptions(context, server_hostname=host)


def connection_parameters(
    settings: BrokerSettings, name: str, timeout_s: float | None = None
) -> list[pika.URLParameters]:
    """One set of parameters per URL of AMQP_URL. pika's BlockingConnection tries them in turn
    and keeps the first that answers, so with the nodes of a cluster listed, a service whose
    node is lost reconnects to another (README, "A broker that survives losing a node")."""
    return [_parameters(url, settings, name, timeout_s) for url in settings.amqp_urls]


def _parameters(url: str, settings: BrokerSettings, name: str, timeout_s: float | None) -> pika.URLParameters:
    params = pika.URLParameters(url)
    if params.ssl_options is not None:  # amqps://
        params.ssl_options = tls_options(settings, params.host)
    if timeout_s is not None:  # fail fast instead of pika's default 10-15 s on a silent network
        params.socket_timeout = timeout_s
        params.stack_timeout = timeout_s
    params.heartbeat = settings.amqp_heartbeat_s
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    params.client_properties = {"connection_name": name}
    return params


def connect(
    settings: BrokerSettings, name: str, stop: threading.Event | None = None, timeout_s: float | None = None
) -> BlockingConnection:
    """Connect, retrying with backoff until RabbitMQ answers (or `stop` is set: the last error is raised).

    Raises `BrokerRefused` at once if the broker refuses the login or the virtual host.
    """
    params = connection_parameters(settings, name, timeout_s)
    for attempt, delay in enumerate(Backoff().delays(), start=1):
        try:
            connection = pika.BlockingConnection(params)
        except CONNECTION_ERRORS as error:
            refuse(error, name)
            logger.warning(
                "RabbitMQ at %s not reachable (attempt %d: %s); retrying in %.1fs",
                redact(settings.amqp_url),
                attempt,
                error or type(error).__name__,
                delay,
            )
            if (stop or threading.Event()).wait(delay):
                raise
            continue
        if attempt > 1 or len(params) > 1:  # which node, when there is a choice
            logger.info("connected to RabbitMQ at %s (attempt %d)", _address(connection), attempt)
        return connection
    raise AssertionError("unreachable")


def _address(connection: BlockingConnection) -> str:
    params = connection._impl.params  # the parameters pika kept: those it connected with
    return f"{params.host}:{params.port}"


def close_quietly(connection: BlockingConnection | None) -> None:
    """Close if open; a connection already lost is fine."""
    if connection is not None and connection.is_open:
        with suppress(*CONNECTION_ERRORS):
            connection.close()


@contextmanager
def closing(connection: BlockingConnection) -> Iterator[BlockingConnection]:
    try:
        yield connection
    finally:
        close_quietly(connection)


def declare_topology(settings: BrokerSettings, name: str, stop: threading.Event | None = None) -> None:
    """Connect (waiting for the broker), declare every exchange, queue and binding, disconnect."""
    with closing(connect(settings, name, stop)) as connection, declaring(name):
        topology.declare(connection.channel())


# A health check also counts a socket timeout or a refused login as "not reachable".
_UNREACHABLE: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, OSError)


def broker_reachable(settings: BrokerSettings, timeout_s: float, name: str = "health") -> bool:
    """Can we open a connection within `timeout_s`? One attempt, for health checks; never raises
    for a broker problem (a refused login is unreachable too), and logs why not."""
    try:
        connection = pika.BlockingConnection(connection_parameters(settings, name, timeout_s))
    except _UNREACHABLE as error:
        logger.warning("%s: RabbitMQ unavailable (%s)", name, error or type(error).__name__)
        return False
    close_quietly(connection)
    return True
