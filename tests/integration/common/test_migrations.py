"""The schema and its migrations, on the real MariaDB: a fresh database gets every migration,
an existing one is upgraded in place and keeps its rows, and one made before migrations
existed (from the old db/schema.sql) is recognised."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from harness.servers import MYSQL_SERVER_URL, fresh_database, remove_database
from services.common.db import create_database
from services.common.migrations import MigrationError, available, migrate

pytestmark = pytest.mark.integration

TABLES = {
    "schema_migrations",
    "students",
    "face_encodings",
    "cameras",
    "courses",
    "course_students",
    "class_sessions",
    "identity_events",
    "attendance",
}


@pytest.fixture
def empty_url() -> Iterator[str]:
    url = f"{MYSQL_SERVER_URL}/test_mig_{uuid.uuid4().hex[:10]}"
    yield url
    remove_database(url)


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(sa.text("SHOW TABLES")).scalars())
    finally:
        engine.dispose()


def test_the_schema_loads_into_an_empty_database_and_again_over_itself() -> None:
    url = fresh_database()  # creates the database and applies every migration
    try:
        create_database(url)  # a second run changes nothing and does not fail
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            assert set(connection.execute(sa.text("SHOW TABLES")).scalars()) >= TABLES
            versions = list(connection.execute(sa.text("SELECT version FROM schema_migrations")).scalars())
            assert versions == [m.version for m in available()]
            # Only active students need unique numbers; a deleted one keeps the row (and history).
            connection.execute(sa.text("INSERT INTO students (student_number, name) VALUES ('S1', 'Ada')"))
            connection.execute(sa.text("UPDATE students SET deleted_at = NOW(6) WHERE student_number = 'S1'"))
            connection.execute(sa.text("INSERT INTO students (student_number, name) VALUES ('S1', 'Ada B')"))
            assert connection.execute(sa.text("SELECT COUNT(*) FROM students")).scalar() == 2
        engine.dispose()
    finally:
        remove_database(url)


def test_an_upgrade_from_the_previous_schema_keeps_the_data(empty_url: str) -> None:
    """Every migration after the first is applied to a database at the one before, holding rows."""
    latest = available()[-1].version
    migrate(empty_url, target=max(1, latest - 1))
    engine = sa.create_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO students (student_number, name) VALUES ('S1', 'Ada')"))
        connection.execute(sa.text("INSERT INTO cameras (id, name) VALUES ('room-1', 'Room 1')"))
    migrate(empty_url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT student_number, name FROM students")).all() == [
            ("S1", "Ada")
        ]
        assert connection.execute(sa.text("SELECT id FROM cameras")).scalars().all() == ["room-1"]
        assert connection.execute(sa.text("SELECT MAX(version) FROM schema_migrations")).scalar() == latest
    engine.dispose()


def test_a_database_made_before_migrations_is_recognised_and_upgraded(empty_url: str) -> None:
    # What the old db/schema.sql made: migration 0001's tables, no ledger.
    migrate(empty_url, target=1)
    engine = sa.create_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE schema_migrations"))
        connection.execute(sa.text("INSERT INTO students (student_number, name) VALUES ('S1', 'Ada')"))
    migrate(empty_url)  # must not re-run 0001 (it would not fail, but later ones must apply)
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version FROM schema_migrations ORDER BY version"))
        assert list(versions.scalars()) == [m.version for m in available()]
        assert connection.execute(sa.text("SELECT COUNT(*) FROM students")).scalar() == 1
    engine.dispose()


def test_migrations_run_in_order_once_each_and_a_failure_names_its_file(
    empty_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_first.sql").write_text(
        "CREATE TABLE t (id INT PRIMARY KEY);\nINSERT INTO t VALUES (1);\n"
    )
    (tmp_path / "0002_second.sql").write_text(
        "-- a column\nALTER TABLE t ADD COLUMN note VARCHAR(10) NULL;\n"
    )
    assert [m.name for m in migrate(empty_url, tmp_path)] == ["first", "second"]
    assert migrate(empty_url, tmp_path) == []  # each runs once
    (tmp_path / "0003_broken.sql").write_text("ALTER TABLE nowhere ADD COLUMN x INT;\n")
    with pytest.raises(MigrationError, match=r"0003_broken.sql, statement 1: .*nowhere"):
        migrate(empty_url, tmp_path)
    (tmp_path / "0005_gap.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match="without gaps"):
        available(tmp_path)


def test_every_statement_of_the_first_migration_is_create_table_if_not_exists() -> None:
    statements = available()[0].statements()
    assert len(statements) == len(TABLES) - 1
    assert all(s.startswith("CREATE TABLE IF NOT EXISTS") for s in statements)
