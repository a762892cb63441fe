"""Run the recorder: `python -m services.recorder` (one per database and CSV file: single.py).

`python -m services.recorder --health`: is the running recorder making progress (health.py)?
Exit 0 if so, 1 if not, printing why; compose's healthcheck runs it.
"""

import logging
import sys
import threading
from datetime import timedelta

from services.common import topology
from services.common.amqp import Consumer, Publisher
from services.common.db import create_engine, wait_for_database
from services.common.lifecycle import stop_on_signals
from services.common.logs import setup_logging
from services.common.settings import load_settings
from services.recorder import health
from services.recorder.csv_journal import CsvJournal
from services.recorder.retention import Purger
from services.recorder.service import AttendanceRecorder
from services.recorder.settings import RecorderSettings
from services.recorder.single import EXIT_ANOTHER_RECORDER, AnotherRecorderError, DatabaseLock, FileLock
from services.recorder.store import AttendanceStore, MarkPolicy
from services.recorder.tick import Ticker

logger = logging.getLogger("services.recorder")


def main() -> None:
    settings = load_settings(RecorderSettings)
    if "--health" in sys.argv[1:]:
        healthy, why = health.check(settings.health_path, settings.recorder_health_max_age_s)
        sys.stdout.write(why + "\n")
        raise SystemExit(0 if healthy else 1)
    setup_logging("recorder", settings.log_level)
    stop = stop_on_signals()
    engine = create_engine(
        settings,
        lock_wait_s=settings.recorder_db_lock_wait_s,
        statement_timeout_s=settings.recorder_db_statement_timeout_s,
    )
    wait_for_database(engine, stop)
    database_lock, file_lock = DatabaseLock(engine), FileLock(settings.recorder_csv_path)
    try:
        database_lock.acquire()
        file_lock.acquire()
    except AnotherRecorderError as refused:
        logger.error("not starting: %s", refused)
        raise SystemExit(EXIT_ANOTHER_RECORDER) from None
    policy = MarkPolicy(
        min_sightings=settings.recorder_min_sightings,
        window=timedelta(seconds=settings.recorder_sighting_window_s),
        late_after_min=settings.recorder_late_after_min,
    )
    liveness = health.Liveness(settings.health_path)
    recorder = AttendanceRecorder(
        AttendanceStore(engine, settings.tz, policy),
        CsvJournal(settings.recorder_csv_path, settings.tz),
        guard=database_lock,
        liveness=liveness,
        stop=stop,
        absent_after=timedelta(seconds=settings.recorder_absent_after_s),
        timetable_days_ahead=settings.timetable_days_ahead,
    )
    recorder.start()
    liveness.loop_alive()  # from now on, the consumer loop must keep going round
    liveness.start(stop)
    Purger(
        engine,
        settings.recorder_sightings_retention_days,
        stop,
        review_retention_days=settings.recorder_review_retention_days,
    ).start()
    Ticker(recorder.tick, Publisher(settings, "recorder-tick"), settings.recorder_tick_s, stop).start()
    if recorder.journal.problem is None:
        logger.info("writing attendance to MySQL and %s", settings.recorder_csv_path.resolve())
    else:
        logger.warning("writing attendance to MySQL only, until the CSV is usable (see the error above)")
    cameras = Consumer(
        settings, "recorder-cameras", topology.CAMERAS_QUEUE, recorder.handle_heartbeats, stop=stop
    )
    heartbeat_thread = threading.Thread(target=cameras.run, name="cameras", daemon=True)
    heartbeat_thread.start()
    try:
        Consumer(
            settings,
            "recorder",
            topology.IDENTITY_QUEUE,
            recorder.handle,
            batch_size=settings.recorder_batch_size,
            on_tick=liveness.loop_alive,
            stop=stop,
        ).run()
        heartbeat_thread.join(timeout=10)
    finally:
        liveness.remove()
        file_lock.release()
        database_lock.release()
    logger.info(
        "recorded %d events (%d redeliveries ignored)", recorder.events_recorded, recorder.redeliveries
    )
    if recorder.fatal is not None:
        logger.error("stopped: %s", recorder.fatal)
        raise SystemExit(EXIT_ANOTHER_RECORDER)


if __name__ == "__main__":
    main()
