"""The background thread that brings live events from RabbitMQ to the hub.

It consumes a private queue (exclusive, auto-delete: it disappears with the connection)
bound to `face.#` on the recognizer exchange and `attendance.#` on the attendance exchange,
and reconnects by itself with backoff whenever RabbitMQ goes away. Live events are a view,
not data: they are consumed without acks, and the queue drops its oldest when we fall behind.
"""

import logging
import threading
import uuid
from contextlib import suppress
from zoneinfo import ZoneInfo

from pika.adapters.blocking_connection import BlockingConnection
from pydantic import ValidationError

from services.common import topology
from services.common.amqp import CONNECTION_ERRORS, connect
from services.common.messages import AttendanceMarked, FaceRecognized, identity_event_adapter
from services.common.settings import BrokerSettings
from services.common.transport import Backoff
from services.web import views
from services.web.hub import LiveEvent, LiveHub, Sighting

logger = logging.getLogger(__name__)

BINDINGS = (
    (topology.RECOGNIZER_EXCHANGE, "face.#"),
    (topology.ATTENDANCE_EXCHANGE, "attendance.#"),
)
# Events waiting in our queue at most: beyond, the broker drops the oldest (they are only a view).
QUEUE_MAX_LENGTH = 1000


def deliver(hub: LiveHub, routing_key: str, body: bytes, tz: ZoneInfo) -> bool:
    """Decode one message and hand it to the hub; False (logged) if it is not a valid event."""
    try:
        if routing_key.startswith("attendance."):
            mark = AttendanceMarked.model_validate_json(body)
            hub.publish(LiveEvent("attendance", views.attendance_mark(mark.model_dump(mode="json"), tz)))
            return True
        face = identity_event_adapter.validate_json(body)
    except ValidationError as error:
        logger.warning("ignoring an invalid live event (%s): %s", routing_key, error.errors()[0]["msg"])
        return False
    distance: float | None
    if isinstance(face, FaceRecognized):
        student_id, name, distance = face.student_id, face.student_name, face.distance
    else:
        student_id, name, distance = None, "unknown", face.best_distance
    hub.record(
        Sighting(
            camera_id=face.camera_id,
            student_id=student_id,
            name=name,
            at=face.captured_at,
            time=views.local_time(face.captured_at, tz, seconds=True),
            distance=distance,
        )
    )
    return True


class LiveConsumer:
    """Consumes live events on a daemon thread until `stop` is set."""

    def __init__(self, settings: BrokerSettings, hub: LiveHub, tz: ZoneInfo, stop: threading.Event) -> None:
        self.settings = settings
        self.hub = hub
        self.tz = tz
        self.stop = stop
        self.thread = threading.Thread(target=self.run, name="live-consumer", daemon=True)
        self._delays = Backoff().delays()

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        self._delays = Backoff().delays()
        while not self.stop.is_set():
            try:
                connection = connect(self.settings, "web-live", self.stop)
            except CONNECTION_ERRORS:
                break  # connect() gives up only when we are stopping
            try:
                self._consume(connection)
                problem = "the broker cancelled the live queue"  # unless we are stopping
            except CONNECTION_ERRORS as error:
                problem = f"RabbitMQ connection lost ({str(error) or type(error).__name__})"
            except Exception:
                # A bug must not end live updates for good: log it loudly and start over.
                logger.exception("live consumer failed")
                problem = "live events failed"
            finally:
                if connection.is_open:
                    with suppress(*CONNECTION_ERRORS):
                        connection.close()
            if self.stop.is_set():
                break
            delay = next(self._delays)
            self.hub.set_broker(False, f"{problem}; reconnecting")
            logger.warning("%s; reconnecting in %.1fs", problem, delay)
            self.stop.wait(delay)
        self.hub.set_broker(False, "stopped")
        logger.info("live consumer stopped")

    def _consume(self, connection: BlockingConnection) -> None:
        channel = connection.channel()
        topology.declare(channel)  # the exchanges we bind to may not exist yet on a fresh broker
        # A new name per connection: the broker may not have noticed yet that the old one is gone.
        queue = f"web.live.{uuid.uuid4().hex[:12]}"
        channel.queue_declare(
            queue,
            exclusive=True,
            auto_delete=True,
            arguments={"x-max-length": QUEUE_MAX_LENGTH, "x-overflow": "drop-head"},
        )
        for exchange, key in BINDINGS:
            channel.queue_bind(queue, exchange, routing_key=key)
        self.hub.set_broker(True, "live")
        self._delays = Backoff().delays()  # connected: the next loss starts again from a short wait
        logger.info("receiving live events on %s", queue)
        for method, _properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.5):
            if self.stop.is_set():
                break
            if method is not None:
                deliver(self.hub, method.routing_key, body, self.tz)
        with suppress(*CONNECTION_ERRORS):
            channel.cancel()
