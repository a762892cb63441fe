-- Migration 0006: a roster import records consent to biometric processing per row (the CSV's
-- optional `consent` column, docs/api-contract.md "Roster imports"). No photo is enrolled for
-- a student without recorded consent (README, Security), so the preview must know, row by row,
-- whether applying it records consent. Loads on MySQL 8 and MariaDB 10.11.
ALTER TABLE roster_import_rows
  ADD COLUMN consent TINYINT(1) NOT NULL DEFAULT 0 AFTER course_codes;
