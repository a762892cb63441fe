"""Run capture for one camera: `python -m services.capture` (one process per camera)."""

import logging
import threading
from contextlib import suppress

import pika
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from services.capture.service import CaptureLoop
from services.capture.settings import CaptureSettings
from services.capture.sources import open_source
from services.common import topology
from services.common.amqp import CONNECTION_ERRORS, connect, message_properties
from services.common.lifecycle import stop_on_signals
from services.common.logs import setup_logging
from services.common.messages import CameraHeartbeat, FrameCaptured
from services.common.settings import load_settings, redact

logger = logging.getLogger("services.capture")


class AmqpFrameSink:
    """Publishes frames without confirms: a frame lost to a broker restart is simply not seen."""

    def __init__(self, settings: CaptureSettings, stop: threading.Event) -> None:
        self.settings = settings
        self.stop = stop
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def _open(self) -> BlockingChannel | None:
        if self._channel is not None and self._channel.is_open:
            return self._channel
        try:
            self._connection = connect(self.settings, f"capture-{self.settings.camera_id}", self.stop)
        except CONNECTION_ERRORS:
            return None  # only when stopping
        self._channel = self._connection.channel()
        topology.declare(self._channel)
        return self._channel

    def _lost(self, error: BaseException) -> None:
        logger.warning(
            "lost RabbitMQ (%s); frames are dropped until it is back", error or type(error).__name__
        )
        self.close()

    def publish_frame(self, frame: FrameCaptured, jpeg: bytes) -> None:
        channel = self._open()
        if channel is None:
            return
        properties = pika.BasicProperties(
            content_type="image/jpeg",
            delivery_mode=pika.DeliveryMode.Transient,
            headers=frame.to_headers(),
        )
        try:
            channel.basic_publish(
                topology.CAPTURE_EXCHANGE, topology.frame_key(frame.camera_id), jpeg, properties
            )
        except CONNECTION_ERRORS as error:
            self._lost(error)

    def publish_heartbeat(self, heartbeat: CameraHeartbeat) -> None:
        channel = self._open()
        if channel is None:
            return
        try:
            channel.basic_publish(
                topology.CAPTURE_EXCHANGE,
                topology.heartbeat_key(heartbeat.camera_id),
                heartbeat.model_dump_json().encode(),
                message_properties(heartbeat, persistent=False),
            )
        except CONNECTION_ERRORS as error:
            self._lost(error)

    def backlog(self) -> tuple[int, int]:
        channel = self._open()
        if channel is None:
            return 0, 0
        try:
            method = channel.queue_declare(topology.FRAMES_QUEUE, passive=True).method
        except CONNECTION_ERRORS as error:
            self._lost(error)
            return 0, 0
        return int(method.message_count), int(method.consumer_count)

    def sleep(self, seconds: float) -> None:
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.sleep(seconds)
                return
            except CONNECTION_ERRORS as error:
                self._lost(error)
        self.stop.wait(seconds)

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with suppress(*CONNECTION_ERRORS):
                connection.close()


def main() -> None:
    settings = load_settings(CaptureSettings)
    setup_logging("capture", settings.log_level)
    stop = stop_on_signals()
    sink = AmqpFrameSink(settings, stop)
    logger.info(
        "camera %s: %s at %s fps, %s pace",
        settings.camera_id,
        redact(settings.capture_source),
        settings.capture_fps or "every",
        settings.capture_pace,
    )
    loop = CaptureLoop(
        settings, lambda: open_source(settings.capture_source, settings.capture_fps), sink, stop
    )
    try:
        published = loop.run()
    finally:
        sink.close()
    logger.info("camera %s: %d frames published", settings.camera_id, published)


if __name__ == "__main__":
    main()
