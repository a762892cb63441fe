"""Per-camera load for the dashboard (issue 11, item 1): the recognizers' `CameraLoad` reports,
aggregated by services.common.camera_load, served as GET /cameras/load (JSON, signed in).

A consumer thread of its own (a private queue, topology.CAMERA_LOADS: short, dropping the
oldest) feeds one `CameraLoadBoard`; requests read its rates under a lock. A camera is
under-served when it processes less than half of what it is offered, or less than half the
average processed rate of the cameras heard of (one camera starved while the others are fine).
"""

import logging
import threading
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from services.common import topology
from services.common.amqp import BrokerRefused, Subscriber
from services.common.camera_load import UNDER_SERVED_BELOW, CameraLoadBoard
from services.common.messages import CameraLoad, utc_now
from services.common.settings import BrokerSettings

logger = logging.getLogger(__name__)


class CameraLoads:
    """A thread-safe board: the consumer adds, pages read."""

    def __init__(self, board: CameraLoadBoard | None = None) -> None:
        self.board = board or CameraLoadBoard()
        self._lock = threading.Lock()

    def add(self, load: CameraLoad) -> None:
        with self._lock:
            self.board.add(load)

    def snapshot(self, now: datetime | None = None) -> list[dict[str, Any]]:
        with self._lock:
            rates = self.board.rates(now or utc_now())
        if not rates:
            return []
        average = sum(rate.processed_per_s for rate in rates.values()) / len(rates)
        out = []
        for rate in rates.values():
            below_average = rate.processed_per_s < UNDER_SERVED_BELOW * average
            out.append(
                {
                    "camera_id": rate.camera_id,
                    "offered_per_s": rate.offered_per_s,
                    "processed_per_s": rate.processed_per_s,
                    "dropped_per_s": rate.dropped_per_s,
                    "workers": list(rate.workers),
                    "ms_per_frame": rate.ms_per_frame,
                    "under_served": rate.under_served or below_average,
                }
            )
        return out


def deliver_load(loads: CameraLoads, body: bytes) -> bool:
    try:
        loads.add(CameraLoad.model_validate_json(body))
    except ValidationError:
        logger.warning("dropped a camera load report that does not parse")
        return False
    return True


class CameraLoadConsumer:
    """Receives load reports on a daemon thread until `stop` is set."""

    def __init__(self, settings: BrokerSettings, loads: CameraLoads, stop: threading.Event) -> None:
        self.loads = loads
        self.subscriber = Subscriber(
            settings, "web-camera-load", topology.CAMERA_LOADS, self._deliver, stop=stop
        )
        self.thread = threading.Thread(target=self.run, name="camera-load-consumer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def run(self) -> None:
        try:
            self.subscriber.run()
        except BrokerRefused:
            return  # said once in the log; /cameras/load shows nothing

    def _deliver(self, _routing_key: str, body: bytes) -> None:
        deliver_load(self.loads, body)
