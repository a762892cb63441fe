"""Schema migrations: numbered SQL files in `db/migrations/`, applied in order and recorded.

`NNNN_what.sql` files run once each, lowest number first; `schema_migrations` records which
ran and when, so upgrading an existing database keeps its data: `python -m
services.common.migrations` (and `make run`, and compose's `migrate` service) applies the
ones missing. MySQL commits DDL statement by statement, so a migration is recorded only once
all its statements have run, and a failed one stops with the file and statement that failed
(fix the cause, then run again: write migrations whose statements can run twice, e.g.
`CREATE TABLE IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS` is MariaDB-only so check first).

A database made from the old `db/schema.sql`, before migrations existed, has the tables but
no `schema_migrations`: it is recognised and recorded as being at migration 0001.
"""

import argparse
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy.engine import make_url

from services.common.logs import setup_logging

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "db" / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

LEDGER = """CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INT UNSIGNED NOT NULL PRIMARY KEY,
  name       VARCHAR(200) NOT NULL,
  applied_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"""


class MigrationError(RuntimeError):
    """A migration failed or the folder is malformed; the message names the file."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        """The file's statements: `--` comment lines dropped, split on a `;` that ends a line."""
        lines = [line for line in self.path.read_text().splitlines() if not line.lstrip().startswith("--")]
        text = "\n".join(lines)
        return [
            s.strip().rstrip(";").strip() for s in re.split(r";\s*\n", text + "\n") if s.strip().strip(";")
        ]


def available(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_what.sql")
        migrations.append(Migration(int(match[1]), match[2], path))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(
            f"{folder}: migrations must be numbered 0001, 0002, ... without gaps: {versions}"
        )
    return migrations


def tls_args(ca_file: Path | None) -> dict[str, Any]:
    """PyMySQL's TLS arguments, for the migrator and every service (services/common/db.py): with a
    CA file, TLS required, the server's certificate verified against it and its name against the
    URL's host; without, none (PyMySQL's default: TLS when the server offers it, unverified, as
    on compose's private network)."""
    if ca_file is None:
        return {}
    return {"ssl_ca": str(ca_file), "ssl_verify_cert": True, "ssl_verify_identity": True}


def _connect(
    database_url: str, database: str | None, ca_file: Path | None = None
) -> pymysql.connections.Connection:
    url = make_url(database_url)
    return pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=database,
        autocommit=True,
        connect_timeout=10,
        init_command="SET time_zone = '+00:00'",
        **tls_args(ca_file),
    )


def database_name(database_url: str) -> str:
    name = make_url(database_url).database
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"database name must be letters, digits and _: {name!r}")
    return name


def applied_versions(cursor: pymysql.cursors.Cursor) -> set[int]:
    cursor.execute("SHOW TABLES LIKE 'schema_migrations'")
    if cursor.fetchone() is None:
        cursor.execute("SHOW TABLES LIKE 'students'")
        pre_migrations = cursor.fetchone() is not None
        cursor.execute(LEDGER)
        if pre_migrations:  # made from the old db/schema.sql, which is migration 0001
            cursor.execute("INSERT INTO schema_migrations (version, name) VALUES (1, 'initial')")
            logger.info("database predates migrations: recorded as at 0001_initial")
    cursor.execute("SELECT version FROM schema_migrations")
    return {int(row[0]) for row in cursor.fetchall()}


def migrate(
    database_url: str,
    folder: Path = MIGRATIONS_DIR,
    target: int | None = None,
    ca_file: Path | None = None,
) -> list[Migration]:
    """Create the database if missing and apply every migration not yet applied (up to `target`),
    over verified TLS with `ca_file` (DATABASE_CA_FILE); returns those applied now."""
    name = database_name(database_url)
    migrations = [m for m in available(folder) if target is None or m.version <= target]
    server = _connect(database_url, None, ca_file)
    try:
        with server.cursor() as cursor:
            cursor.execute(
                f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cursor.execute(f"USE `{name}`")
            done = applied_versions(cursor)
            applied = []
            for migration in migrations:
                if migration.version in done:
                    continue
                for number, statement in enumerate(migration.statements(), start=1):
                    try:
                        cursor.execute(statement)
                    except pymysql.MySQLError as error:
                        raise MigrationError(
                            f"{migration.path.name}, statement {number}: {error.args[-1]}"
                        ) from error
                cursor.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
                logger.info("applied migration %04d_%s", migration.version, migration.name)
                applied.append(migration)
            return applied
    finally:
        server.close()


def main() -> None:
    from services.common.settings import (  # noqa: PLC0415 - the library part needs no settings
        BaseServiceSettings,
        DatabaseSettings,
        load_settings,
        redact,
    )

    class MigrateSettings(BaseServiceSettings, DatabaseSettings):
        pass

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=int, help="stop after this migration number")
    args = parser.parse_args()
    settings = load_settings(MigrateSettings)
    setup_logging("migrate", settings.log_level)
    try:
        applied = migrate(settings.database_url, target=args.target, ca_file=settings.database_ca_file)
    except MigrationError as error:
        logger.error("migration failed: %s", error)  # one clear line, not a trace
        raise SystemExit(1) from error
    logger.info(
        "database %s is up to date (%d migration(s) applied now)", redact(settings.database_url), len(applied)
    )


if __name__ == "__main__":
    main()
