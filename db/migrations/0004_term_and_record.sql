-- Migration 0004: the attendance a teacher runs and corrects (docs/attendance-record.md):
-- terms, a weekly timetable and holidays; four statuses with who set them; the history of
-- every change; the review queue; consent to biometric processing. Loads on MySQL 8 and
-- MariaDB 10.11; every timestamp is UTC, every DATE/TIME is the school's local calendar.
-- Existing rows keep their meaning: marks made by recognition, default sessions unchanged.

-- ---- timetable ----

-- A school term: a course's weekly slots generate its sessions between these days.
CREATE TABLE IF NOT EXISTS terms (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name       VARCHAR(200) NOT NULL,
  first_day  DATE NOT NULL,
  last_day   DATE NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_terms_name (name),
  CONSTRAINT ck_terms_span CHECK (last_day >= first_day)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Days without lessons, for the whole school (one day: first_day = last_day).
CREATE TABLE IF NOT EXISTS holidays (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name       VARCHAR(200) NOT NULL,
  first_day  DATE NOT NULL,
  last_day   DATE NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY ix_holidays_days (first_day, last_day),
  CONSTRAINT ck_holidays_span CHECK (last_day >= first_day)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A course meets in front of a camera on a weekday (0 = Monday) from starts_time to
-- ends_time, every week of a term except holidays. Its sessions are rows of class_sessions
-- (slot_id, slot_day), made ahead by services/common/timetable.py.
CREATE TABLE IF NOT EXISTS timetable_slots (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  course_id   BIGINT UNSIGNED NOT NULL,
  term_id     BIGINT UNSIGNED NOT NULL,
  camera_id   VARCHAR(64) NOT NULL,
  weekday     TINYINT UNSIGNED NOT NULL,
  starts_time TIME NOT NULL,
  ends_time   TIME NOT NULL,
  created_at  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY ix_timetable_slots_course (course_id),
  CONSTRAINT ck_timetable_slots_weekday CHECK (weekday <= 6),
  CONSTRAINT ck_timetable_slots_span CHECK (ends_time > starts_time),
  CONSTRAINT fk_timetable_slots_course FOREIGN KEY (course_id) REFERENCES courses (id) ON DELETE CASCADE,
  CONSTRAINT fk_timetable_slots_term FOREIGN KEY (term_id) REFERENCES terms (id),
  CONSTRAINT fk_timetable_slots_camera FOREIGN KEY (camera_id) REFERENCES cameras (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A course's own grace before a first sighting counts as late (NULL: the school's default).
ALTER TABLE courses
  ADD COLUMN late_after_min SMALLINT UNSIGNED NULL AFTER name;

-- A session made from a slot names it and its day (at most one per slot and day); one that
-- ended gets finalized_at once its roster's absences are decided.
ALTER TABLE class_sessions
  ADD COLUMN slot_id      BIGINT UNSIGNED NULL AFTER default_day,
  ADD COLUMN slot_day     DATE NULL AFTER slot_id,
  ADD COLUMN finalized_at DATETIME(6) NULL AFTER slot_day,
  ADD UNIQUE KEY uq_class_sessions_slot (slot_id, slot_day),
  ADD KEY ix_class_sessions_open (finalized_at, ends_at),
  ADD CONSTRAINT fk_class_sessions_slot FOREIGN KEY (slot_id) REFERENCES timetable_slots (id) ON DELETE SET NULL;

-- ---- statuses and their history ----

-- A row is present or late (recognition, or a person), absent (decided when the session
-- ended, or set by a person) or excused (a person, with a reason). Only recognition's marks
-- have sightings and distances. mark_event_id stays the row's key in the CSV journal.
-- `status` is the row's status now; `source` and `reason` are the mark's own (who made the
-- row and why), never rewritten: who set the status now is the latest change's source
-- (services/common/corrections.py). A person's mark says who in `marked_by` (as the audit
-- log names them). Existing rows were made by recognition.
ALTER TABLE attendance
  DROP CONSTRAINT ck_attendance_status;
ALTER TABLE attendance
  MODIFY COLUMN first_seen_at DATETIME(6) NULL,
  MODIFY COLUMN last_seen_at  DATETIME(6) NULL,
  MODIFY COLUMN best_distance FLOAT NULL,
  MODIFY COLUMN mark_distance FLOAT NULL,
  MODIFY COLUMN sightings     INT UNSIGNED NOT NULL DEFAULT 0,
  ADD COLUMN source VARCHAR(16) NOT NULL DEFAULT 'recognition' AFTER status,
  ADD COLUMN reason VARCHAR(500) NOT NULL DEFAULT '' AFTER source,
  ADD COLUMN marked_by VARCHAR(300) NULL AFTER reason,
  ADD COLUMN marked_by_user_id BIGINT UNSIGNED NULL AFTER marked_by,
  ADD CONSTRAINT ck_attendance_status CHECK (status IN ('present', 'late', 'absent', 'excused')),
  ADD CONSTRAINT ck_attendance_source CHECK (source IN ('recognition', 'person', 'system'));

-- Every change of a row's status after it was made: who (a person, recognition, or the
-- system), when, from, to, why. Append-only. change_event_id is its row's key in the CSV
-- journal, where it appears as a new row that refers to the mark it corrects.
CREATE TABLE IF NOT EXISTS attendance_changes (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  change_event_id CHAR(36) NOT NULL,
  attendance_id   BIGINT UNSIGNED NOT NULL,
  changed_at      DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  source          VARCHAR(16) NOT NULL,
  actor           VARCHAR(300) NOT NULL,
  actor_user_id   BIGINT UNSIGNED NULL,
  from_status     VARCHAR(16) NOT NULL,
  to_status       VARCHAR(16) NOT NULL,
  reason          VARCHAR(500) NOT NULL DEFAULT '',
  UNIQUE KEY uq_attendance_changes_event (change_event_id),
  KEY ix_attendance_changes_attendance (attendance_id, id),
  CONSTRAINT ck_attendance_changes_source CHECK (source IN ('recognition', 'person', 'system')),
  CONSTRAINT fk_attendance_changes_attendance FOREIGN KEY (attendance_id) REFERENCES attendance (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- ---- review queue ----

-- A track the system would not name (unknown) or named on thin evidence (check), kept for a
-- person to decide, until resolved or purged after the retention period. Crops are
-- biometric data: purged with the item, erased with the student they were assigned to.
CREATE TABLE IF NOT EXISTS review_items (
  id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  track_id        CHAR(36) NOT NULL,
  kind            VARCHAR(16) NOT NULL,            -- unknown | check
  camera_id       VARCHAR(64) NOT NULL,
  session_id      BIGINT UNSIGNED NULL,
  candidate_id    BIGINT UNSIGNED NULL,            -- the closest student, if any
  best_distance   FLOAT NULL,
  first_seen_at   DATETIME(6) NOT NULL,
  last_seen_at    DATETIME(6) NOT NULL,
  state           VARCHAR(16) NOT NULL DEFAULT 'open',  -- open | assigned | dismissed | undone
  resolved_at     DATETIME(6) NULL,
  resolved_by     VARCHAR(300) NULL,
  resolved_student_id BIGINT UNSIGNED NULL,
  attendance_id   BIGINT UNSIGNED NULL,            -- the mark it became or concerned
  UNIQUE KEY uq_review_items_track (track_id),
  KEY ix_review_items_session (session_id, state),
  KEY ix_review_items_seen (last_seen_at),
  CONSTRAINT ck_review_items_kind CHECK (kind IN ('unknown', 'check')),
  CONSTRAINT ck_review_items_state CHECK (state IN ('open', 'assigned', 'dismissed', 'undone'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A few face crops (JPEG) of an item's track, best first.
CREATE TABLE IF NOT EXISTS review_crops (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  item_id     BIGINT UNSIGNED NOT NULL,
  captured_at DATETIME(6) NOT NULL,
  distance    FLOAT NULL,
  crop        MEDIUMBLOB NOT NULL,
  KEY ix_review_crops_item (item_id),
  CONSTRAINT fk_review_crops_item FOREIGN KEY (item_id) REFERENCES review_items (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- ---- consent ----

-- Consent to biometric processing, recorded per student: no photo or encoding is stored
-- without it, and withdrawing it erases them.
ALTER TABLE students
  ADD COLUMN consent_at   DATETIME(6) NULL AFTER name,
  ADD COLUMN consent_by   VARCHAR(300) NULL AFTER consent_at,
  ADD COLUMN consent_note VARCHAR(500) NOT NULL DEFAULT '' AFTER consent_by;
