"""Finding 14 (one MySQL user with full rights for every service): each service's user has
exactly its tables (services/common/db_grants.py), on the real MariaDB. Before, every service
connected as the one owner (root locally): any of them read password hashes and face
encodings, forged attendance, or dropped tables."""

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError, ProgrammingError

from services.common.db import create_engine
from services.common.settings import DatabaseSettings
from tests.support.db_users import service_db_user

pytestmark = pytest.mark.integration

DENIED = (OperationalError, ProgrammingError)


@pytest.fixture
def connect(database_url: str) -> Iterator[object]:
    engines: list[sa.Engine] = []
    users = []

    def as_service(service: str) -> sa.Engine:
        manager = service_db_user(database_url, service)
        users.append(manager)
        engine = create_engine(DatabaseSettings(database_url=manager.__enter__()))
        engines.append(engine)
        return engine

    yield as_service
    for engine in engines:
        engine.dispose()
    for manager in users:
        manager.__exit__(None, None, None)


def denied(engine: sa.Engine, statement: str) -> bool:
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    except DENIED as error:
        return "denied" in str(error).lower()
    return False


def allowed(engine: sa.Engine, statement: str) -> bool:
    with engine.begin() as connection:
        connection.execute(sa.text(statement))
    return True


def test_a_recognizer_reads_the_gallery_and_nothing_else(connect) -> None:  # type: ignore[no-untyped-def]
    recognizer = connect("recognizer")
    assert allowed(
        recognizer, "SELECT f.student_id FROM face_encodings f JOIN students s ON s.id = f.student_id"
    )
    assert denied(recognizer, "SELECT password_hash FROM users")
    assert denied(recognizer, "SELECT * FROM auth_tokens")
    assert denied(recognizer, "INSERT INTO students (student_number, name) VALUES ('X1', 'Forged')")
    assert denied(recognizer, "UPDATE attendance SET status = 'present'")
    assert denied(recognizer, "DELETE FROM face_encodings")


def test_the_recorder_never_sees_accounts_or_encodings(connect) -> None:  # type: ignore[no-untyped-def]
    recorder = connect("recorder")
    assert allowed(recorder, "SELECT COUNT(*) FROM attendance JOIN course_students USING (student_id)")
    assert allowed(recorder, "DELETE FROM identity_events WHERE captured_at < '2000-01-01'")
    assert denied(recorder, "SELECT * FROM users")
    assert denied(recorder, "SELECT * FROM auth_tokens")
    assert denied(recorder, "SELECT * FROM face_encodings")
    assert denied(recorder, "SELECT * FROM audit_log")
    assert denied(recorder, "DELETE FROM students")
    assert denied(recorder, "INSERT INTO course_students (course_id, student_id) VALUES (1, 1)")


def test_the_api_cannot_rewrite_the_audit_log_read_sightings_or_change_the_schema(connect) -> None:  # type: ignore[no-untyped-def]
    api = connect("api")
    assert allowed(api, "SELECT COUNT(*) FROM users JOIN auth_tokens ON auth_tokens.user_id = users.id")
    assert allowed(api, "SELECT COUNT(*) FROM audit_log")
    assert denied(api, "DELETE FROM audit_log")
    assert denied(api, "UPDATE audit_log SET detail = ''")
    assert denied(api, "SELECT * FROM identity_events")
    assert denied(api, "DROP TABLE attendance")
    assert denied(api, "ALTER TABLE students ADD COLUMN x INT")
    assert denied(api, "CREATE USER 'intruder'@'%' IDENTIFIED BY 'x'")
