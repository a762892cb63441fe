-- Migration 0002: accounts, roles and tokens (docs/auth-contract.md), course teachers and the
-- audit log. Loads on MySQL 8 and MariaDB 10.11; every timestamp is UTC. No row is inserted:
-- there is no default account, the first admin is made with
-- `python -m services.api.accounts create-admin`.

-- People who sign in. Passwords are Argon2id hashes (argon2-cffi's encoded form, which holds
-- its own salt and parameters). Users are disabled, never deleted, so the audit log and the
-- tokens they created keep their author.
CREATE TABLE IF NOT EXISTS users (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  username      VARCHAR(64)  NOT NULL,  -- unique regardless of case (the collation ignores it)
  display_name  VARCHAR(200) NOT NULL,
  role          VARCHAR(16)  NOT NULL,
  password_hash VARCHAR(255) NOT NULL,
  disabled      BOOLEAN      NOT NULL DEFAULT FALSE,
  created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  UNIQUE KEY uq_users_username (username),
  CONSTRAINT ck_users_role CHECK (role IN ('admin', 'teacher', 'viewer'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Bearer tokens. Only the SHA-256 of the secret is stored (the secret is 32 random bytes,
-- shown once). A session token belongs to a user (kind 'session', from logging in, with an
-- expiry); an API token is made by an admin for a program (kind 'api', its own role, no
-- expiry, until revoked). A session token acts with its user's current role; `role` records
-- the role it was issued with. (No CHECK ties kind to user_id: MySQL 8 forbids CHECK
-- constraints on a column with a foreign key action.)
CREATE TABLE IF NOT EXISTS auth_tokens (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  kind         VARCHAR(16)  NOT NULL,
  token_sha256 CHAR(64)     NOT NULL,
  name         VARCHAR(200) NULL,       -- an API token's purpose, e.g. "nightly export"
  user_id      BIGINT UNSIGNED NULL,    -- a session token's user
  role         VARCHAR(16)  NOT NULL,
  created_by   BIGINT UNSIGNED NULL,    -- the admin who made an API token
  created_at   DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  expires_at   DATETIME(6)  NULL,
  revoked_at   DATETIME(6)  NULL,
  last_used_at DATETIME(6)  NULL,
  UNIQUE KEY uq_auth_tokens_sha256 (token_sha256),
  KEY ix_auth_tokens_user (user_id),
  KEY ix_auth_tokens_kind (kind, id),
  CONSTRAINT ck_auth_tokens_kind CHECK (kind IN ('session', 'api')),
  CONSTRAINT ck_auth_tokens_role CHECK (role IN ('admin', 'teacher', 'viewer')),
  CONSTRAINT fk_auth_tokens_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
  CONSTRAINT fk_auth_tokens_created_by FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Who teaches which course: a teacher reads (and enrolls) only what their courses hold.
CREATE TABLE IF NOT EXISTS course_teachers (
  course_id BIGINT UNSIGNED NOT NULL,
  user_id   BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (course_id, user_id),
  KEY ix_course_teachers_user (user_id),
  CONSTRAINT fk_course_teachers_course FOREIGN KEY (course_id) REFERENCES courses (id) ON DELETE CASCADE,
  CONSTRAINT fk_course_teachers_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Who created, changed, exported or erased what. Append-only; `actor` is a snapshot (e.g.
-- "ada (user 3)" or "api token 'nightly export' (token 7)") so it reads the same later, and
-- no foreign key ties a row to what it describes, which may have been erased.
CREATE TABLE IF NOT EXISTS audit_log (
  id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  at            DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  actor         VARCHAR(300) NOT NULL,
  actor_user_id BIGINT UNSIGNED NULL,
  actor_token_id BIGINT UNSIGNED NULL,
  action        VARCHAR(64)  NOT NULL,  -- e.g. student.create, attendance.export, student.erase
  target_type   VARCHAR(64)  NOT NULL,
  target_id     VARCHAR(64)  NULL,
  detail        VARCHAR(2000) NOT NULL DEFAULT '',
  KEY ix_audit_log_at (at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
