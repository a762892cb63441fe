"""Run the recorder: `python -m services.recorder` (one per CSV file)."""

import logging
import threading
from datetime import timedelta

from services.common import topology
from services.common.amqp import Consumer
from services.common.db import create_engine, wait_for_database
from services.common.lifecycle import stop_on_signals
from services.common.logs import setup_logging
from services.common.settings import load_settings
from services.recorder.csv_journal import CsvJournal
from services.recorder.service import AttendanceRecorder
from services.recorder.settings import RecorderSettings
from services.recorder.store import AttendanceStore, MarkPolicy

logger = logging.getLogger("services.recorder")


def main() -> None:
    settings = load_settings(RecorderSettings)
    setup_logging("recorder", settings.log_level)
    stop = stop_on_signals()
    engine = create_engine(settings)
    wait_for_database(engine, stop)
    policy = MarkPolicy(
        min_sightings=settings.recorder_min_sightings,
        window=timedelta(seconds=settings.recorder_sighting_window_s),
        late_after_min=settings.recorder_late_after_min,
    )
    recorder = AttendanceRecorder(
        AttendanceStore(engine, settings.tz, policy), CsvJournal(settings.recorder_csv_path, settings.tz)
    )
    recorder.start()
    logger.info("writing attendance to MySQL and %s", settings.recorder_csv_path.resolve())
    cameras = Consumer(
        settings, "recorder-cameras", topology.CAMERAS_QUEUE, recorder.handle_heartbeats, stop=stop
    )
    heartbeat_thread = threading.Thread(target=cameras.run, name="cameras", daemon=True)
    heartbeat_thread.start()
    Consumer(
        settings,
        "recorder",
        topology.IDENTITY_QUEUE,
        recorder.handle,
        batch_size=settings.recorder_batch_size,
        stop=stop,
    ).run()
    heartbeat_thread.join(timeout=10)
    logger.info(
        "recorded %d events (%d redeliveries ignored)", recorder.events_recorded, recorder.redeliveries
    )


if __name__ == "__main__":
    main()
