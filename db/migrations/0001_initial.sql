-- Migration 0001: the schema as it stood before migrations existed (it was db/schema.sql).
-- Loads on MySQL 8 and MariaDB 10.11 (utf8mb4_unicode_ci exists on both; MySQL 8's default
-- collation does not exist on MariaDB). Every timestamp is UTC.

CREATE TABLE IF NOT EXISTS students (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  student_number VARCHAR(64)  NOT NULL,
  name           VARCHAR(200) NOT NULL,
  created_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  -- A deleted student keeps this row so past attendance (and the CSV) stays whole; their
  -- biometric data is erased. Only active students must have unique numbers.
  deleted_at     DATETIME(6)  NULL,
  active_number  VARCHAR(64) GENERATED ALWAYS AS (IF(deleted_at IS NULL, student_number, NULL)) STORED,
  UNIQUE KEY uq_students_active_number (active_number),
  KEY ix_students_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per enrollment photo: the photo (kept so encodings can be recomputed when the
-- model changes) and the one face encoding found in it. Biometric data: deleted with the student.
CREATE TABLE IF NOT EXISTS face_encodings (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  student_id   BIGINT UNSIGNED NOT NULL,
  encoding     VARBINARY(1024) NOT NULL,  -- 128 little-endian float64
  photo        MEDIUMBLOB NULL,
  photo_sha256 CHAR(64) NOT NULL,
  face_top     INT NOT NULL,
  face_right   INT NOT NULL,
  face_bottom  INT NOT NULL,
  face_left    INT NOT NULL,
  created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_face_encodings_photo (student_id, photo_sha256),
  CONSTRAINT fk_face_encodings_student FOREIGN KEY (student_id) REFERENCES students (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS cameras (
  id            VARCHAR(64)  NOT NULL PRIMARY KEY,
  name          VARCHAR(200) NOT NULL,
  source        VARCHAR(500) NULL,       -- a description; never a URL with a password
  last_frame_at DATETIME(6)  NULL,
  created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS courses (
  id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  code       VARCHAR(64)  NOT NULL,
  name       VARCHAR(200) NOT NULL,
  created_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_courses_code (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The roster of a course: who is expected in its sessions.
CREATE TABLE IF NOT EXISTS course_students (
  course_id  BIGINT UNSIGNED NOT NULL,
  student_id BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (course_id, student_id),
  CONSTRAINT fk_course_students_course FOREIGN KEY (course_id) REFERENCES courses (id) ON DELETE CASCADE,
  CONSTRAINT fk_course_students_student FOREIGN KEY (student_id) REFERENCES students (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A class session happens in front of one camera between starts_at and ends_at. When no
-- session is scheduled, the recorder uses the camera's default session of that day
-- (default_day set; at most one per camera and day).
CREATE TABLE IF NOT EXISTS class_sessions (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name        VARCHAR(200) NOT NULL,
  course_id   BIGINT UNSIGNED NULL,
  camera_id   VARCHAR(64)  NOT NULL,
  starts_at   DATETIME(6)  NOT NULL,
  ends_at     DATETIME(6)  NOT NULL,
  default_day DATE NULL,
  created_at  DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_class_sessions_default (camera_id, default_day),
  KEY ix_class_sessions_camera_time (camera_id, starts_at, ends_at),
  CONSTRAINT ck_class_sessions_span CHECK (ends_at > starts_at),
  CONSTRAINT fk_class_sessions_camera FOREIGN KEY (camera_id) REFERENCES cameras (id),
  CONSTRAINT fk_class_sessions_course FOREIGN KEY (course_id) REFERENCES courses (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Every identity event the recorder has accepted. event_id is UNIQUE so a redelivered
-- message changes nothing. No foreign keys: this is an append-only log written at speed.
CREATE TABLE IF NOT EXISTS identity_events (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id      CHAR(36)    NOT NULL,
  kind          VARCHAR(16) NOT NULL,    -- recognized | unknown
  camera_id     VARCHAR(64) NOT NULL,
  frame_seq     BIGINT UNSIGNED NOT NULL,
  captured_at   DATETIME(6) NOT NULL,
  recognized_at DATETIME(6) NOT NULL,
  student_id    BIGINT UNSIGNED NULL,
  distance      FLOAT NULL,
  tracked       BOOLEAN NOT NULL DEFAULT FALSE,  -- named by tracking, without a new encoding
  session_id    BIGINT UNSIGNED NULL,
  recorded_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_identity_events_event (event_id),
  KEY ix_identity_events_sightings (session_id, student_id, captured_at),
  KEY ix_identity_events_camera_time (camera_id, captured_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per student per session, written only by the recorder. The CSV has one line per row.
CREATE TABLE IF NOT EXISTS attendance (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  session_id     BIGINT UNSIGNED NOT NULL,
  student_id     BIGINT UNSIGNED NOT NULL,
  status         VARCHAR(16) NOT NULL,
  first_seen_at  DATETIME(6) NOT NULL,
  last_seen_at   DATETIME(6) NOT NULL,
  best_distance  FLOAT NOT NULL,
  mark_distance  FLOAT NOT NULL,
  sightings      INT UNSIGNED NOT NULL DEFAULT 1,
  mark_event_id  CHAR(36)    NOT NULL,
  marked_at      DATETIME(6) NOT NULL,
  UNIQUE KEY uq_attendance_session_student (session_id, student_id),
  UNIQUE KEY uq_attendance_mark_event (mark_event_id),
  KEY ix_attendance_student (student_id),
  CONSTRAINT ck_attendance_status CHECK (status IN ('present', 'late')),
  CONSTRAINT fk_attendance_session FOREIGN KEY (session_id) REFERENCES class_sessions (id),
  CONSTRAINT fk_attendance_student FOREIGN KEY (student_id) REFERENCES students (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
