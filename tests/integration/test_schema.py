import sqlalchemy as sa

from services.common.db import create_database, schema_statements
from tests.support import infra

TABLES = {
    "students",
    "face_encodings",
    "cameras",
    "courses",
    "course_students",
    "class_sessions",
    "identity_events",
    "attendance",
}


def test_the_schema_loads_into_an_empty_database_and_again_over_itself() -> None:
    url = infra.fresh_database()  # creates the database and loads the schema
    try:
        create_database(url)  # a second load changes nothing and does not fail
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            tables = set(connection.execute(sa.text("SHOW TABLES")).scalars())
            assert tables == TABLES
            # Only active students need unique numbers; a deleted one keeps the row (and history).
            connection.execute(sa.text("INSERT INTO students (student_number, name) VALUES ('S1', 'Ada')"))
            connection.execute(sa.text("UPDATE students SET deleted_at = NOW(6) WHERE student_number = 'S1'"))
            connection.execute(sa.text("INSERT INTO students (student_number, name) VALUES ('S1', 'Ada B')"))
            assert connection.execute(sa.text("SELECT COUNT(*) FROM students")).scalar() == 2
        engine.dispose()
    finally:
        infra.remove_database(url)


def test_every_statement_is_create_table_if_not_exists() -> None:
    statements = schema_statements()
    assert len(statements) == len(TABLES)
    assert all(s.startswith("CREATE TABLE IF NOT EXISTS") for s in statements)
