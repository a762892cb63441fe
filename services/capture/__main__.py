"""Run capture for one camera: `python -m services.capture` (one process per camera)."""

import logging
import threading

from services.capture.service import CaptureLoop
from services.capture.settings import CaptureSettings
from services.capture.sources import open_source
from services.common import topology
from services.common.amqp import StreamPublisher
from services.common.lifecycle import stop_on_signals
from services.common.logs import setup_logging
from services.common.messages import CameraHeartbeat, FrameCaptured
from services.common.settings import load_settings, redact
from services.common.transport import Outgoing

logger = logging.getLogger("services.capture")


class AmqpFrameSink:
    """Publishes frames without confirms: a frame lost to a broker restart is simply not seen."""

    def __init__(self, settings: CaptureSettings, stop: threading.Event) -> None:
        self._publisher = StreamPublisher(settings, f"capture-{settings.camera_id}", stop)

    def publish_frame(self, frame: FrameCaptured, jpeg: bytes) -> None:
        self._publisher.publish_bytes(
            topology.CAPTURE_EXCHANGE,
            topology.frame_key(frame.camera_id),
            jpeg,
            content_type="image/jpeg",
            headers=frame.to_headers(),
        )

    def publish_heartbeat(self, heartbeat: CameraHeartbeat) -> None:
        self._publisher.publish(
            Outgoing(
                topology.CAPTURE_EXCHANGE,
                topology.heartbeat_key(heartbeat.camera_id),
                heartbeat,
                persistent=False,
            )
        )

    def backlog(self) -> tuple[int, int]:
        return self._publisher.queue_depth(topology.FRAMES_QUEUE)

    def sleep(self, seconds: float) -> None:
        self._publisher.sleep(seconds)

    def close(self) -> None:
        self._publisher.close()


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
