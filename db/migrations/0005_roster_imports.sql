-- Migration 0005: roster imports (docs/api-contract.md, "Roster imports"). An admin uploads a
-- CSV of students (and a ZIP of their photos); the API checks every row and photo first and
-- keeps the verdicts here as a preview, then applies them on request, recording each row's
-- outcome. Loads on MySQL 8 and MariaDB 10.11; every timestamp is UTC.

-- One import job. `state`: checking (photos are being analysed), ready (the preview is
-- complete), applying, applied, failed (a fault stopped it; `error` says which), discarded
-- (cancelled, or expired: its staged photos erased). `processed` of `total` is the progress
-- of the phase running (photos while checking, rows while applying). `updated_at` moves with
-- every step, so a job whose process died is recognisable by its silence.
CREATE TABLE IF NOT EXISTS roster_imports (
  id                 BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  created_by         VARCHAR(300) NOT NULL,        -- as the audit log names people
  created_by_user_id BIGINT UNSIGNED NULL,
  created_at         DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at         DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  state              VARCHAR(16) NOT NULL,
  csv_filename       VARCHAR(255) NOT NULL DEFAULT '',
  zip_filename       VARCHAR(255) NULL,
  delimiter          VARCHAR(8) NOT NULL DEFAULT ',',
  total              INT UNSIGNED NOT NULL DEFAULT 0,
  processed          INT UNSIGNED NOT NULL DEFAULT 0,
  notes              TEXT NULL,                    -- JSON: ignored columns, photos matching no row
  error              VARCHAR(500) NOT NULL DEFAULT '',
  applied_by         VARCHAR(300) NULL,
  applied_at         DATETIME(6) NULL,
  finished_at        DATETIME(6) NULL,
  KEY ix_roster_imports_created (created_at),
  CONSTRAINT ck_roster_imports_state
    CHECK (state IN ('checking', 'ready', 'applying', 'applied', 'failed', 'discarded'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One data line of the CSV (`line` is its line number in the file, the header being 1) with
-- its verdict (create, update, unchanged, refuse) and why, and once applied its outcome.
-- The analysed photo (the normalised JPEG, its face box and encoding) waits here between the
-- preview and the apply: it is biometric data, erased from this table when the job is
-- applied, discarded or expired.
CREATE TABLE IF NOT EXISTS roster_import_rows (
  import_id      BIGINT UNSIGNED NOT NULL,
  line           INT UNSIGNED NOT NULL,
  student_number VARCHAR(200) NOT NULL DEFAULT '',
  name           VARCHAR(300) NOT NULL DEFAULT '',
  course_codes   VARCHAR(1000) NOT NULL DEFAULT '',  -- space-separated, as found in the file
  student_id     BIGINT UNSIGNED NULL,               -- the existing student an update concerns
  verdict        VARCHAR(16) NOT NULL,
  reason         VARCHAR(500) NOT NULL DEFAULT '',
  changes        VARCHAR(500) NOT NULL DEFAULT '',   -- what an update changes, for people
  photo_name     VARCHAR(255) NULL,                  -- its ZIP member
  photo_state    VARCHAR(16) NULL,                   -- pending | accepted | refused
  face_px        INT UNSIGNED NULL,
  photo          MEDIUMBLOB NULL,
  photo_sha256   CHAR(64) NULL,
  encoding       BLOB NULL,
  face_top       INT NULL,
  face_right     INT NULL,
  face_bottom    INT NULL,
  face_left      INT NULL,
  outcome        VARCHAR(16) NULL,                   -- created | updated | unchanged | refused
  outcome_reason VARCHAR(500) NOT NULL DEFAULT '',
  PRIMARY KEY (import_id, line),
  CONSTRAINT ck_roster_import_rows_verdict CHECK (verdict IN ('create', 'update', 'unchanged', 'refuse')),
  CONSTRAINT ck_roster_import_rows_photo CHECK (photo_state IN ('pending', 'accepted', 'refused')),
  CONSTRAINT ck_roster_import_rows_outcome
    CHECK (outcome IN ('created', 'updated', 'unchanged', 'refused')),
  CONSTRAINT fk_roster_import_rows_import FOREIGN KEY (import_id) REFERENCES roster_imports (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
