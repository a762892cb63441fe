"""Migration 0005 (roster imports) on the real MariaDB: a database at 0004 holding students,
courses and rosters is upgraded in place, keeps them, and takes import jobs whose checks hold;
its statements run twice without failing (a migration stopped midway is run again)."""

import uuid
from collections.abc import Iterator

import pymysql
import pytest
import sqlalchemy as sa

from harness.servers import MYSQL_SERVER_URL, remove_database
from services.common.migrations import available, migrate

pytestmark = pytest.mark.integration


@pytest.fixture
def url() -> Iterator[str]:
    url = f"{MYSQL_SERVER_URL}/test_mig5_{uuid.uuid4().hex[:10]}"
    yield url
    remove_database(url)


def test_a_database_at_0004_is_upgraded_and_takes_import_jobs(url: str) -> None:
    migrate(url, target=4)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO students (student_number, name, consent_note) VALUES ('S1', 'Ada', 'form')")
        )
        connection.execute(sa.text("INSERT INTO courses (code, name) VALUES ('MATH101', 'Maths')"))
        connection.execute(sa.text("INSERT INTO course_students (course_id, student_id) VALUES (1, 1)"))
    assert [m.version for m in migrate(url)] == [v.version for v in available() if v.version >= 5]
    with engine.begin() as connection:
        assert connection.execute(
            sa.text("SELECT student_number, name, consent_note FROM students")
        ).all() == [("S1", "Ada", "form")]
        assert connection.execute(sa.text("SELECT course_id, student_id FROM course_students")).all() == [
            (1, 1)
        ]
        connection.execute(
            sa.text(
                "INSERT INTO roster_imports (created_by, state, csv_filename) VALUES ('ada (user 1)', 'ready', 'a.csv')"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO roster_import_rows (import_id, line, student_number, name, verdict, photo_state) "
                "VALUES (1, 2, 'S2', 'Bob', 'create', 'pending')"
            )
        )
        for bad in (
            "UPDATE roster_imports SET state = 'half-done'",
            "UPDATE roster_import_rows SET verdict = 'maybe'",
            "UPDATE roster_import_rows SET outcome = 'exploded'",
        ):
            with pytest.raises(sa.exc.OperationalError), connection.begin_nested():
                connection.execute(sa.text(bad))
        # Deleting a job deletes its rows (and any photo staged in them).
        connection.execute(sa.text("DELETE FROM roster_imports"))
        assert connection.execute(sa.text("SELECT COUNT(*) FROM roster_import_rows")).scalar() == 0
    engine.dispose()
    # Every statement again, as a re-run after a failure would: nothing fails.
    migration = next(m for m in available() if m.version == 5)
    where = sa.engine.make_url(url)
    server = pymysql.connect(
        host=where.host,
        port=where.port or 3306,
        user=where.username,
        password=where.password or "",
        database=where.database,
        autocommit=True,
    )
    try:
        with server.cursor() as cursor:
            for statement in migration.statements():
                cursor.execute(statement)
    finally:
        server.close()
