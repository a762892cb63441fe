"""Retention: identity events older than RECORDER_SIGHTINGS_RETENTION_DAYS are deleted, and
review items with their face crops older than RECORDER_REVIEW_RETENTION_DAYS (`purge_review`).

A sighting is biometric-derived data (who was where, when, every second or so): about 4 M rows
per camera per day with a class in view, kept forever before this (issue 9, finding 13). The
recorder runs `Purger` on a thread of its own: at start, then every PURGE_EVERY_S, it deletes
the events captured before the cutoff, BATCH at a time, each batch its own short transaction.

Attendance is kept: a mark names the event it was made on (`attendance.mark_event_id`) as a
string, not a foreign key, so it outlives its sightings; attendance history is what the school
keeps. (A redelivery of a purged event could be recorded again, but the broker holds nothing
that old: dead letters go after 14 days, topology.DEAD_LETTER_TTL_MS.)

Each batch is `DELETE ... WHERE captured_at < :cutoff ORDER BY captured_at LIMIT n` on the
index of captured_at (migration 0007): it reads and locks only the old rows, however they are
interleaved with new ones by arrival, and once they are gone a run costs one index probe.
"""

import logging
import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

logger = logging.getLogger(__name__)

BATCH = 1000
PURGE_EVERY_S = 3600.0


def cutoff_for(retention_days: int, now: datetime | None = None) -> datetime:
    """Sightings captured before this (naive UTC, as stored) are purged."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(tzinfo=None) - timedelta(days=retention_days)


def purge_sightings(
    engine: sa.Engine,
    retention_days: int,
    now: datetime | None = None,
    batch: int = BATCH,
    stop: threading.Event | None = None,
) -> int:
    """Delete identity events older than the retention, in batches; how many were deleted.
    0 days keeps them forever."""
    if retention_days <= 0:
        return 0
    cutoff = cutoff_for(retention_days, now)
    deleted = 0
    while stop is None or not stop.is_set():
        with engine.begin() as connection:
            result = connection.execute(
                sa.text(
                    "DELETE FROM identity_events WHERE captured_at < :cutoff "
                    "ORDER BY captured_at LIMIT :batch"
                ),
                {"cutoff": cutoff, "batch": batch},
            )
        deleted += result.rowcount
        if result.rowcount < batch:
            break  # nothing old is left
    if deleted:
        logger.info("purged %d sighting(s) captured before %s UTC", deleted, cutoff.isoformat(" "))
    return deleted


def purge_review(
    engine: sa.Engine, retention_days: int, now: datetime | None = None, batch: int = BATCH
) -> int:
    """Delete review items (whatever their state) last seen before the retention, with their
    face crops (ON DELETE CASCADE), a batch per transaction; how many items were deleted. The
    queue is small (a few items per lesson), and `last_seen_at` has an index: no id walk needed.
    0 days keeps them forever."""
    if retention_days <= 0:
        return 0
    cutoff = cutoff_for(retention_days, now)
    deleted = 0
    while True:
        with engine.begin() as connection:
            ids = list(
                connection.execute(
                    sa.text(
                        "SELECT id FROM review_items WHERE last_seen_at < :cutoff ORDER BY id LIMIT :batch"
                    ),
                    {"cutoff": cutoff, "batch": batch},
                ).scalars()
            )
            if not ids:
                break
            deleted += connection.execute(
                sa.text("DELETE FROM review_items WHERE id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": ids},
            ).rowcount
    if deleted:
        logger.info("purged %d review item(s) and their face crops, last seen before %s UTC", deleted, cutoff)
    return deleted


class Purger:
    """Purges at start, then every `every_s` seconds, until `stop` is set: sightings after
    `retention_days`, review items and crops after `review_retention_days`. A failed run (the
    database away, a lock wait timeout) is logged and tried again at the next."""

    def __init__(
        self,
        engine: sa.Engine,
        retention_days: int,
        stop: threading.Event,
        every_s: float = PURGE_EVERY_S,
        review_retention_days: int = 0,
    ) -> None:
        self.engine = engine
        self.retention_days = retention_days
        self.review_retention_days = review_retention_days
        self.stop = stop
        self.every_s = every_s

    def run(self) -> None:
        if self.retention_days <= 0:
            logger.info("sightings are kept forever (RECORDER_SIGHTINGS_RETENTION_DAYS=0)")
        else:
            logger.info(
                "sightings are kept %d day(s), purged every %.0f s", self.retention_days, self.every_s
            )
        if self.review_retention_days <= 0:
            logger.info("review items and crops are kept forever (RECORDER_REVIEW_RETENTION_DAYS=0)")
        if self.retention_days <= 0 and self.review_retention_days <= 0:
            return
        while not self.stop.is_set():
            try:
                purge_sightings(self.engine, self.retention_days, stop=self.stop)
            except Exception:
                logger.exception("purging old sightings failed; trying again in %.0f s", self.every_s)
            try:
                purge_review(self.engine, self.review_retention_days)
            except Exception:
                logger.exception("purging old review items failed; trying again in %.0f s", self.every_s)
            self.stop.wait(self.every_s)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="retention", daemon=True)
        thread.start()
        return thread
