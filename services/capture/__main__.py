"""Run capture for one camera: `python -m services.capture` (one process per camera)."""

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from services.capture.service import CaptureLoop, CreditEvents
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
    """Publishes frames without confirms: a frame lost to a broker restart is simply not seen.

    Frames go to the consistent-hash frames exchange, keyed by camera (services.common.topology).
    In fast pace it also hears of its camera's analyzed frames (capture's credit) and of frames
    the broker returned because no recognizer was bound."""

    def __init__(self, settings: CaptureSettings, stop: threading.Event) -> None:
        self._events = CreditEvents()
        fast = settings.capture_pace == "fast"
        self._publisher = StreamPublisher(
            settings,
            f"capture-{settings.camera_id}",
            stop,
            subscriptions=[(topology.frame_summaries(settings.camera_id), self._on_analyzed)] if fast else [],
            on_return=self._on_return if fast else None,
            on_connect=self._on_connect if fast else None,
        )

    def _on_analyzed(self, _key: str, body: bytes) -> None:
        try:
            self._events.analyzed.append(int(json.loads(body)["frame_seq"]))
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring a frame summary that is not one")

    def _on_return(self, headers: Mapping[str, Any]) -> None:
        seq = headers.get("seq")
        if isinstance(seq, int):
            self._events.returned.append(seq)

    def _on_connect(self) -> None:
        self._events.reconnected = True

    def credit_events(self) -> CreditEvents:
        events, self._events = self._events, CreditEvents()
        return events

    def publish_frame(self, frame: FrameCaptured, jpeg: bytes) -> None:
        self._publisher.publish_bytes(
            topology.FRAMES_EXCHANGE,
            topology.frame_key(frame.camera_id),
            jpeg,
            content_type="image/jpeg",
            headers=frame.to_headers(),
            mandatory=not frame.droppable,  # returned to us if no recognizer is there to take it
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
