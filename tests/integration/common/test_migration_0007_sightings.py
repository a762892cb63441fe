"""Migration 0007 (sightings by capture time) on the real MariaDB: a database at 0006 holding
sightings is upgraded in place, keeps them, and the purge's index is there."""

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from harness.servers import MYSQL_SERVER_URL, remove_database
from services.common.migrations import migrate

pytestmark = pytest.mark.integration


@pytest.fixture
def url() -> Iterator[str]:
    url = f"{MYSQL_SERVER_URL}/test_mig7_{uuid.uuid4().hex[:10]}"
    yield url
    remove_database(url)


def test_a_database_at_0006_keeps_its_sightings_and_gains_the_capture_time_index(url: str) -> None:
    migrate(url, target=6)
    engine = sa.create_engine(url)
    rows = [{"event": str(uuid.uuid4()), "at": f"2026-0{month}-01 08:00:00"} for month in range(1, 4)]
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO identity_events (event_id, kind, camera_id, frame_seq, captured_at, recognized_at) "
                "VALUES (:event, 'unknown', 'room-1', 1, :at, :at)"
            ),
            rows,
        )
    assert [m.version for m in migrate(url)] == [7]
    with engine.connect() as connection:
        kept = connection.execute(sa.text("SELECT event_id FROM identity_events ORDER BY id")).scalars().all()
        indexes = connection.execute(sa.text("SHOW INDEX FROM identity_events")).mappings().all()
    engine.dispose()
    assert kept == [r["event"] for r in rows]
    assert [i["Column_name"] for i in indexes if i["Key_name"] == "ix_identity_events_captured"] == [
        "captured_at"
    ]
