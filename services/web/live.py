"""The background thread that brings live events from RabbitMQ to the hub.

It subscribes to `topology.LIVE_EVENTS`, a private queue (exclusive, auto-delete: it
disappears with the connection) bound to `face.#` on the recognizer exchange and
`attendance.#` on the attendance exchange (marks become `attendance` events for browsers,
changes of a status `attendance.changed` ones), and reconnects by itself with backoff whenever
RabbitMQ goes away. Live events are a view, not data: they are consumed without acks, and the
queue drops its oldest when we fall behind.
"""

import logging
import threading
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from services.common import topology
from services.common.amqp import BrokerRefused, Subscriber
from services.common.messages import (
    AttendanceChanged,
    FaceRecognized,
    attendance_event_adapter,
    identity_event_adapter,
)
from services.common.settings import BrokerSettings
from services.web import views
from services.web.hub import LiveEvent, LiveHub, Sighting

logger = logging.getLogger(__name__)


def deliver(hub: LiveHub, routing_key: str, body: bytes, tz: ZoneInfo) -> bool:
    """Decode one message and hand it to the hub; False (logged) if it is not a valid event."""
    try:
        if routing_key.startswith("attendance."):
            record = attendance_event_adapter.validate_json(body)
            line = views.attendance_mark(record.model_dump(mode="json"), tz)
            if isinstance(record, AttendanceChanged):  # a correction, an excuse, a late sighting
                line |= {"from_status": record.from_status, "change_event_id": str(record.change_event_id)}
                hub.publish(LiveEvent("attendance.changed", line))
            else:
                hub.publish(LiveEvent("attendance", line))
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
    """Consumes live events on a daemon thread until `stop` is set.

    If RabbitMQ refuses us (see services.common.amqp.errors) live updates stop, said once in
    the log and in the dashboard's broker status; the pages, which need only the API, stay up.
    """

    def __init__(self, settings: BrokerSettings, hub: LiveHub, tz: ZoneInfo, stop: threading.Event) -> None:
        self.hub = hub
        self.tz = tz
        self.subscriber = Subscriber(
            settings, "web-live", topology.LIVE_EVENTS, self._deliver, stop=stop, on_status=hub.set_broker
        )
        self.thread = threading.Thread(target=self.run, name="live-consumer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        try:
            self.subscriber.run()
        except BrokerRefused:
            return  # logged and shown as the broker status by the subscriber

    def _deliver(self, routing_key: str, body: bytes) -> None:
        deliver(self.hub, routing_key, body, self.tz)
