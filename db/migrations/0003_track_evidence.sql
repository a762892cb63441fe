-- Migration 0003: recognition decides per track (services/faces/decision.py), so an identity
-- event names its track and, when unknown, the closest candidate (for a person to review);
-- a mark keeps the evidence it was made on and a confidence tier ("check": thin evidence,
-- shown to the teacher rather than silently present). Rows from before keep NULLs.
ALTER TABLE identity_events
  ADD COLUMN track_id     CHAR(36) NULL AFTER tracked,
  ADD COLUMN candidate_id BIGINT UNSIGNED NULL AFTER track_id,
  ADD KEY ix_identity_events_track (track_id);

ALTER TABLE attendance
  ADD COLUMN evidence_fresh    SMALLINT UNSIGNED NULL AFTER mark_event_id,
  ADD COLUMN evidence_agreeing SMALLINT UNSIGNED NULL AFTER evidence_fresh,
  ADD COLUMN mean_distance     FLOAT NULL AFTER evidence_agreeing,
  ADD COLUMN mark_margin       FLOAT NULL AFTER mean_distance,
  ADD COLUMN confidence        VARCHAR(16) NULL AFTER mark_margin,
  ADD COLUMN mark_track_id     CHAR(36) NULL AFTER confidence,
  ADD CONSTRAINT ck_attendance_confidence CHECK (confidence IS NULL OR confidence IN ('confident', 'check'));
