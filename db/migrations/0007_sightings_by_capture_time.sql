-- Migration 0007: sightings by capture time, for the retention purge (services/recorder/
-- retention.py). Without an index of its own on captured_at, the purge walked ids and stopped
-- at the first batch with nothing old, so an old-dated sighting stored behind a thousand newer
-- ones (a backlog replayed, a camera with a wrong clock) was kept for good. InnoDB builds the
-- index online: inserts go on meanwhile. One statement: done and recorded, or not at all.
-- Loads on MySQL 8 and MariaDB 10.11.
ALTER TABLE identity_events
  ADD KEY ix_identity_events_captured (captured_at);
