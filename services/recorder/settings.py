"""Recorder settings (environment variables of the same names)."""

from pathlib import Path

from pydantic import Field

from services.common.settings import BaseServiceSettings, BrokerSettings, DatabaseSettings, TimetableSettings


class RecorderSettings(BaseServiceSettings, BrokerSettings, DatabaseSettings, TimetableSettings):
    # The attendance CSV: a header, then one row per mark, in step with MySQL.
    recorder_csv_path: Path = Path("var/attendance.csv")
    # Events committed per transaction: batching is what makes thousands of events/s possible.
    recorder_batch_size: int = Field(200, ge=1, le=5000)
    # A student is marked at the first identity event naming them: the recognizer names a face
    # only once its track's looks agree (RECOGNIZER_CONFIRM_*). More than 1 also asks for that
    # many such events within the window (each a fresh look, about a second apart).
    recorder_min_sightings: int = Field(1, ge=1, le=100)
    recorder_sighting_window_s: float = Field(10.0, gt=0, le=3600)
    # Minutes after a scheduled session's start from which a first sighting counts as late
    # (unset: always present). Default daily sessions are never late.
    recorder_late_after_min: float | None = Field(None, ge=0)
    # Database calls that wait longer fail and are retried (logged), instead of hanging.
    recorder_db_lock_wait_s: int = Field(10, ge=1, le=3600)
    recorder_db_statement_timeout_s: float = Field(30.0, gt=0, le=3600)
    # How long a batch may stay unfinished (retries included), or the consumer loop stand
    # still, before `python -m services.recorder --health` says unhealthy. Above the statement
    # timeout, so one slow call is not yet a failure. The recorder keeps its health file
    # beside the CSV, as <RECORDER_CSV_PATH>.health.
    recorder_health_max_age_s: float = Field(60.0, gt=0, le=3600)
    # Days a sighting (an identity event) is kept, then purged (hourly, services/recorder/
    # retention.py); attendance marks are kept. 0 keeps sightings forever.
    recorder_sightings_retention_days: int = Field(30, ge=0, le=36_500)
    # Seconds between the recorder's ticks (services/recorder/tick.py): deciding the absences
    # of ended sessions, journaling and announcing the marks and changes others made.
    recorder_tick_s: float = Field(5.0, gt=0, le=3600)
    # Seconds after a session's end before its absences are decided, so sightings still in
    # the pipeline arrive first (one arriving later still turns an absence into present).
    recorder_absent_after_s: float = Field(30.0, ge=0, le=86_400)
    # Days the review queue keeps a face it could not name (or named on thin evidence) and its
    # crops, decided or not, then purged with the sightings; 0 keeps them forever.
    recorder_review_retention_days: int = Field(7, ge=0, le=3650)

    @property
    def health_path(self) -> Path:
        return self.recorder_csv_path.with_name(self.recorder_csv_path.name + ".health")
