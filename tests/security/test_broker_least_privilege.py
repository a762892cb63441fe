"""Issue 9, finding 3: attendance could be forged through the broker, since every service shared
one RabbitMQ user with every right. Now each service has a user of its own with
topology.PERMISSIONS (what rabbitmq/entrypoint.sh grants): only a recognizer may publish an
identity event. On a fresh vhost, with users created from the same data and deleted after."""

import shutil
import subprocess
import urllib.parse
import uuid
from collections.abc import Callable, Iterator

import pika
import pika.exceptions
import pytest

from harness.servers import AMQP_SERVER_URL, fresh_vhost, remove_vhost
from services.common import topology

pytestmark = [pytest.mark.integration, pytest.mark.security]

Connect = Callable[[str], pika.BlockingConnection]


def rabbitmqctl(*args: str) -> None:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def accounts() -> Iterator[tuple[str, dict[str, str]]]:
    """A fresh vhost with the topology, and a user per service with exactly its permissions."""
    vhost, admin_url = fresh_vhost()
    suffix = uuid.uuid4().hex[:8]
    users: list[str] = []
    # The topology exists, as the definitions create it at boot.
    admin = pika.BlockingConnection(pika.URLParameters(admin_url))
    topology.declare(admin.channel())
    admin.close()
    credentials: dict[str, str] = {}
    try:
        for service, (configure, write, read) in topology.PERMISSIONS.items():
            user, password = f"test-{topology.broker_user(service)}-{suffix}", uuid.uuid4().hex
            rabbitmqctl("add_user", user, password)
            users.append(user)
            rabbitmqctl("set_permissions", "-p", vhost, user, configure, write, read)
            credentials[service] = f"{user}:{password}"
        yield vhost, credentials
    finally:
        for user in users:
            rabbitmqctl("delete_user", user)
        remove_vhost(vhost)


@pytest.fixture
def connect(accounts: tuple[str, dict[str, str]]) -> Iterator[Connect]:
    """connect(service): a connection as that service's user."""
    vhost, credentials = accounts
    server = urllib.parse.urlsplit(AMQP_SERVER_URL)
    connections: list[pika.BlockingConnection] = []

    def open_as(service: str) -> pika.BlockingConnection:
        host = f"{server.hostname}:{server.port or 5672}"
        url = f"amqp://{credentials[service]}@{host}/{urllib.parse.quote(vhost, safe='')}"
        connection = pika.BlockingConnection(pika.URLParameters(url))
        connections.append(connection)
        return connection

    yield open_as
    for connection in connections:
        if connection.is_open:
            connection.close()


def identity_event() -> bytes:
    """A forged "student 1 seen at door-1" (the broker's rights do not depend on the body)."""
    return b'{"kind": "face.recognized", "camera_id": "door-1", "student_id": 1}'


def publish(connection: pika.BlockingConnection, exchange: str, routing_key: str) -> None:
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish(exchange, routing_key, identity_event())


def test_capture_cannot_publish_an_identity_event(connect: Connect) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        publish(connect("capture"), topology.RECOGNIZER_EXCHANGE, topology.recognized_key("door-1"))
    assert refused.value.reply_code == 403 and "ACCESS_REFUSED" in refused.value.reply_text


def test_the_recorder_cannot_publish_an_identity_event(connect: Connect) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        publish(connect("recorder"), topology.RECOGNIZER_EXCHANGE, topology.recognized_key("door-1"))
    assert refused.value.reply_code == 403


@pytest.mark.parametrize("service", ["api", "web"])
def test_nor_may_the_api_or_the_dashboard(connect: Connect, service: str) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        publish(connect(service), topology.RECOGNIZER_EXCHANGE, topology.recognized_key("door-1"))
    assert refused.value.reply_code == 403


def test_a_recognizer_may_and_the_recorder_receives_it(connect: Connect) -> None:
    publish(connect("recognizer"), topology.RECOGNIZER_EXCHANGE, topology.recognized_key("door-1"))
    channel = connect("recorder").channel()
    method, _properties, body = channel.basic_get(topology.IDENTITY_QUEUE, auto_ack=True)
    assert method is not None and body == identity_event()


def test_capture_cannot_read_the_recorders_queue(connect: Connect) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        connect("capture").channel().basic_get(topology.IDENTITY_QUEUE, auto_ack=True)
    assert refused.value.reply_code == 403


@pytest.mark.parametrize("service", topology.SERVICES)
def test_every_service_can_still_declare_what_it_uses(connect: Connect, service: str) -> None:
    """What each service does at connect time (services/common/amqp): the whole topology, its
    private queues bound and consumed; and a publish to each exchange it owns."""
    connection = connect(service)
    channel = connection.channel()
    topology.declare(channel)
    for queue in topology.ACCESS[service].private:
        name = topology.declare_private(channel, queue)
        channel.basic_consume(name, lambda *_args: None, auto_ack=True)
    channel.confirm_delivery()
    for exchange in topology.ACCESS[service].publishes:
        channel.basic_publish(exchange, "camera.door-1", b"{}")
    for queue_name in topology.ACCESS[service].consumes:
        channel.basic_get(queue_name)
    assert channel.is_open


# Camera previews show faces (biometric data): only recognizers publish them, only the dashboard
# takes copies (services.common.topology, "Camera previews").


def preview_body() -> bytes:
    return b'{"kind": "frame.previewed", "camera_id": "door-1", "jpeg": "/9j/"}'


@pytest.mark.parametrize("service", ["capture", "recorder", "api", "web"])
def test_only_a_recognizer_may_publish_a_camera_preview(connect: Connect, service: str) -> None:
    channel = connect(service).channel()
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.basic_publish(topology.PREVIEW_EXCHANGE, topology.preview_key("door-1"), preview_body())
    assert refused.value.reply_code == 403 and "ACCESS_REFUSED" in refused.value.reply_text


@pytest.mark.parametrize("service", ["capture", "recognizer", "recorder", "api"])
def test_nobody_but_the_dashboard_may_take_copies_of_previews(connect: Connect, service: str) -> None:
    """Binding a queue of one's own to the preview exchange needs read on it."""
    channel = connect(service).channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        # A name the service may configure (its own private queue, where it has one).
        own = topology.ACCESS[service].private
        name = own[0].new_name() if own else topology.IDENTITY_QUEUE
        if own:
            channel.queue_declare(name, exclusive=True, auto_delete=True)
        channel.queue_bind(name, topology.PREVIEW_EXCHANGE, "#")
    assert refused.value.reply_code == 403


def test_a_recognizers_preview_reaches_the_dashboards_queue(connect: Connect) -> None:
    web = connect("web").channel()
    queue = topology.declare_private(web, topology.LIVE_PREVIEWS)
    recognizer = connect("recognizer").channel()
    recognizer.confirm_delivery()
    recognizer.basic_publish(topology.PREVIEW_EXCHANGE, topology.preview_key("door-1"), preview_body())
    method, _properties, body = web.basic_get(queue, auto_ack=True)
    assert method is not None and body == preview_body()
