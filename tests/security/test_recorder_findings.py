"""Issue 9's findings about the recorder, each reproduced on a real MariaDB and RabbitMQ.

One test per finding, named for it. Each failed on the code before its fix (the commit that
added it says where)."""

import csv
import io
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pymysql
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from harness.paths import ROOT
from harness.processes import ServiceProcess, wait_until
from harness.servers import fresh_database, remove_database
from services.common import topology
from services.common.attendance import CSV_COLUMNS, AttendanceMark, csv_text, fetch_marks
from services.common.db import create_engine
from services.common.messages import CameraHeartbeat, FaceBox, FaceRecognized
from services.common.settings import DatabaseSettings
from services.common.students import create_student
from services.recorder.csv_journal import CsvJournal
from services.recorder.store import AttendanceStore, MarkPolicy
from tests.support.amqp import TestBroker
from tests.support.infra import scalar

pytestmark = pytest.mark.integration

BOX = FaceBox(top=1, right=100, bottom=100, left=1)
HOSTILE = ['=HYPERLINK("x")', "=cmd|' /C calc'!A0", "@SUM(1)", "+1+2", "-2", "\tx", "\rx"]


@pytest.fixture
def broker(amqp_url: str) -> Iterator[TestBroker]:
    broker = TestBroker(amqp_url)
    yield broker
    broker.close()


def recorder_env(database_url: str, amqp_url: str, csv_path: Path, **env: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "RECORDER_CSV_PATH": str(csv_path),
        "RECORDER_BATCH_SIZE": "50",
        "RECORDER_MIN_SIGHTINGS": "1",
        **env,
    }


@pytest.fixture
def start_recorder(
    database_url: str, amqp_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(**env: str) -> ServiceProcess:
        process = ServiceProcess(
            "services.recorder",
            recorder_env(database_url, amqp_url, tmp_path / "a.csv", **env),
            f"{request.node.name}-recorder-{len(started)}",
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def health(database_url: str, amqp_url: str, csv_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m services.recorder --health`, as the compose healthcheck runs it."""
    return subprocess.run(
        [sys.executable, "-m", "services.recorder", "--health"],
        cwd=ROOT,
        env={**os.environ, **recorder_env(database_url, amqp_url, csv_path, **env)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def student(engine: sa.Engine, number: str, name: str) -> int:
    with engine.begin() as connection:
        return create_student(connection, number, name).id


def seen(student_id: int, at: datetime | None = None, camera: str = "room-1") -> FaceRecognized:
    return FaceRecognized(
        camera_id=camera,
        frame_seq=1,
        captured_at=at or datetime.now(UTC),
        box=BOX,
        worker="test",
        student_id=student_id,
        student_number="S",
        student_name="n",
        distance=0.42,
    )


def send(broker: TestBroker, event: FaceRecognized) -> None:
    broker.publish(topology.RECOGNIZER_EXCHANGE, topology.recognized_key(event.camera_id), event)


def csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8-sig") as file:
        return list(csv.DictReader(file))


def test_finding_5_no_csv_cell_can_start_a_formula(
    engine: sa.Engine,
    broker: TestBroker,
    start_recorder: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    ids = [student(engine, number, name) for number, name in zip(HOSTILE, HOSTILE, strict=True)]
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO cameras (id, name) VALUES ('room-1', '@room')"))
        now = datetime.now(UTC).replace(tzinfo=None)
        connection.execute(
            sa.text(
                "INSERT INTO class_sessions (name, camera_id, starts_at, ends_at) "
                "VALUES ('=1+1 Maths', 'room-1', :s, :e)"
            ),
            {"s": now - timedelta(hours=1), "e": now + timedelta(hours=1)},
        )
    recorder = start_recorder()
    for student_id in ids:
        send(broker, seen(student_id))
    path = tmp_path / "a.csv"
    wait_until(lambda: len(csv_rows(path)) == len(HOSTILE), 20, "one CSV row per student")
    expected = {"'" + value for value in HOSTILE}
    recorder_rows = csv_rows(path)
    assert {row["student_name"] for row in recorder_rows} == expected
    assert {row["student_number"] for row in recorder_rows} == expected
    assert {row["session_name"] for row in recorder_rows} == {"'=1+1 Maths"}
    # Our own numbers and times are not text and are left alone.
    assert all(row["distance"] == "0.4200" and row["first_seen_at"][0].isdigit() for row in recorder_rows)
    # The API's exports are written by the same code.
    with engine.connect() as connection:
        exported = list(csv.DictReader(io.StringIO(csv_text(fetch_marks(connection), ZoneInfo("UTC")))))
    assert {row["student_name"] for row in exported} == expected
    # The recorder reads its file back at start: nothing is missing, nothing appended twice.
    assert recorder.stop() == 0
    again = start_recorder()
    wait_until(lambda: "consuming recorder.identity" in again.log(), 30, "the restarted recorder")
    assert len(csv_rows(path)) == len(HOSTILE)
    assert "behind MySQL" not in again.log()


def test_finding_6_a_failed_batch_does_not_make_a_camera_look_known(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    student_id = student(engine, "S1", "Ada Lovelace")
    store = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy())
    real = store._update_attendance
    calls = []

    def deadlock_once(*args: object, **kwargs: object) -> list[int]:
        calls.append(1)
        if len(calls) == 1:  # after the camera's INSERT, before the commit
            raise sa.exc.OperationalError(
                "INSERT", {}, Exception("(1213, 'Deadlock found when trying to get lock')")
            )
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_update_attendance", deadlock_once)
    with pytest.raises(sa.exc.OperationalError):
        store.record([seen(student_id, camera="room-9")])
    assert scalar(engine, "SELECT COUNT(*) FROM cameras") == 0  # rolled back
    t0 = datetime.now(UTC)
    for n in range(3):
        store.record([seen(student_id, t0 + timedelta(seconds=n), camera="room-9")])
    assert scalar(engine, "SELECT COUNT(*) FROM identity_events WHERE camera_id = 'room-9'") == 3
    assert scalar(engine, "SELECT COUNT(*) FROM attendance") == 1


def test_finding_7_a_csv_saved_by_a_spreadsheet_is_accepted_and_a_wrong_one_stops_only_the_csv(
    database_url: str,
    amqp_url: str,
    engine: sa.Engine,
    broker: TestBroker,
    start_recorder: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    ada, grace = student(engine, "S1", "Ada Lovelace"), student(engine, "S2", "Grace Hopper")
    path = tmp_path / "a.csv"
    old = [str(n) if c == "attendance_id" else "x" for n, c in enumerate(CSV_COLUMNS, start=1)]
    # As a spreadsheet saves it: a byte-order mark, and CRLF line ends.
    path.write_bytes(("\ufeff" + ",".join(CSV_COLUMNS) + "\r\n" + ",".join(old) + "\r\n").encode())
    recorder = start_recorder()
    send(broker, seen(ada))
    wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM attendance") == 1, 20, "the mark in MySQL")
    wait_until(lambda: len(csv_rows(path)) == 2, 10, "the mark in the CSV")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") == 3 and data.count(b"\n") == 3
    assert csv_rows(path)[1]["student_name"] == "Ada Lovelace"
    assert recorder.stop() == 0

    # A file that is not ours at all: MySQL still gets every mark, and the problem is told.
    path.write_text("name;date\nAda;2026-12-01\n")
    recorder = start_recorder()
    send(broker, seen(grace))
    wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM attendance") == 2, 20, "the mark in MySQL")
    assert path.read_text() == "name;date\nAda;2026-12-01\n"  # untouched
    log = recorder.log()
    assert log.count("ERROR") == 1 and "RECORDER_CSV_PATH" in log and "move it aside" in log
    checked = health(database_url, amqp_url, path)
    assert checked.returncode == 1 and "move it aside" in checked.stdout


def test_finding_9_a_second_recorder_on_the_same_csv_refuses_to_start(
    engine: sa.Engine,
    broker: TestBroker,
    start_recorder: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    students = [student(engine, f"S{n}", f"Student {n}") for n in range(6)]
    # One message at a time: the broker deals the sightings out to the two in turn.
    first = start_recorder(RECORDER_MIN_SIGHTINGS="2", RECORDER_BATCH_SIZE="1")
    wait_until(lambda: "consuming recorder.identity" in first.log(), 30, "the first recorder")
    second = start_recorder(RECORDER_MIN_SIGHTINGS="2", RECORDER_BATCH_SIZE="1")
    wait_until(
        lambda: second.process.poll() is not None or "consuming recorder.identity" in second.log(),
        30,
        "the second recorder to start or refuse",
    )
    t0 = datetime.now(UTC)
    for n in range(2):
        for student_id in students:
            send(broker, seen(student_id, t0 + timedelta(seconds=n)))
    wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM identity_events") == 12, 30, "12 sightings")
    wait_until(lambda: broker.depth(topology.IDENTITY_QUEUE) == 0, 10, "the queue drained")
    wait_until(lambda: len(csv_rows(tmp_path / "a.csv")) >= 6, 10, "the CSV rows")
    assert scalar(engine, "SELECT COUNT(*) FROM attendance") == 6, "a vote was lost"
    rows = csv_rows(tmp_path / "a.csv")
    assert sorted(r["event_id"] for r in rows) == sorted({r["event_id"] for r in rows}), "a row written twice"
    assert len(rows) == 6
    assert second.wait(30) != 0
    assert "another recorder" in second.log()
    assert first.process.poll() is None


def test_finding_10_csv_rows_are_keyed_by_what_survives_a_database_reset(
    amqp_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    path = tmp_path / "a.csv"
    old_marks = [
        AttendanceMark(
            attendance_id=n,
            session_id=1,
            session_name="before the reset",
            camera_id="room-1",
            student_id=1,
            student_number="S1",
            student_name="Ada Lovelace",
            status="present",
            first_seen_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
            last_seen_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
            distance=0.4,
            best_distance=0.4,
            sightings=1,
            event_id=str(uuid.uuid4()),
            marked_at=datetime(2026, 1, 5, 9, tzinfo=UTC),
        )
        for n in (1, 2, 3)
    ]
    journal = CsvJournal(path, ZoneInfo("UTC"))
    journal.open()
    journal.append(old_marks)
    new_url = fresh_database()  # the database was reset; the old CSV was kept
    engine = create_engine(DatabaseSettings(database_url=new_url))
    recorder = None
    try:
        ada = student(engine, "S1", "Ada Lovelace")
        # The new database's first mark: committed, then the recorder crashed before the CSV.
        batch = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy()).record([seen(ada)])
        assert batch.marks[0].attendance_id == 1  # the same id as an old row
        recorder = ServiceProcess(
            "services.recorder",
            recorder_env(new_url, amqp_url, path),
            f"{request.node.name}-recorder",
        )
        wait_until(lambda: "consuming recorder.identity" in recorder.log(), 30, "the recorder")
        events = [r["event_id"] for r in csv_rows(path)]
        assert events == [m.event_id for m in old_marks] + [batch.marks[0].event_id], "the lost mark"
    finally:
        if recorder is not None:
            recorder.stop()
        engine.dispose()
        remove_database(new_url)


def test_finding_11_a_stuck_database_call_is_logged_retried_and_turns_health_bad(
    database_url: str,
    amqp_url: str,
    engine: sa.Engine,
    broker: TestBroker,
    start_recorder: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    ada = student(engine, "S1", "Ada Lovelace")
    fast = {
        "RECORDER_DB_LOCK_WAIT_S": "2",
        "RECORDER_DB_STATEMENT_TIMEOUT_S": "3",
        "RECORDER_HEALTH_MAX_AGE_S": "5",
    }
    recorder = start_recorder(**fast)
    wait_until(lambda: "consuming recorder.identity" in recorder.log(), 30, "the recorder")
    url = make_url(database_url)
    locker = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        database=url.database,
    )
    released = threading.Event()
    try:
        with locker.cursor() as cursor:
            cursor.execute("LOCK TABLES identity_events WRITE")  # held 40 s in the audit
        send(broker, seen(ada))
        wait_until(
            lambda: "transient failure" in recorder.log() and "Lock wait timeout" in recorder.log(),
            20,
            "the stuck call to be logged and retried",
        )
        wait_until(
            lambda: health(database_url, amqp_url, tmp_path / "a.csv", **fast).returncode == 1,
            30,
            "health to turn bad",
        )
        checked = health(database_url, amqp_url, tmp_path / "a.csv", **fast)
        assert "no batch" in checked.stdout
        with locker.cursor() as cursor:
            cursor.execute("UNLOCK TABLES")
        released.set()
        wait_until(lambda: scalar(engine, "SELECT COUNT(*) FROM attendance") == 1, 30, "the event, after")
        wait_until(lambda: broker.depth(topology.IDENTITY_QUEUE) == 0, 10, "the message acked")
        wait_until(
            lambda: health(database_url, amqp_url, tmp_path / "a.csv", **fast).returncode == 0,
            30,
            "health to recover",
        )
    finally:
        locker.close()


def test_finding_3_an_event_for_a_deleted_or_unknown_student_makes_no_mark(
    engine: sa.Engine, broker: TestBroker, start_recorder: Callable[..., ServiceProcess]
) -> None:
    ada, gone = student(engine, "S1", "Ada Lovelace"), student(engine, "S2", "Gone Student")
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE students SET deleted_at = CURRENT_TIMESTAMP(6) WHERE id = :id"), {"id": gone}
        )
    recorder = start_recorder()
    t0 = datetime.now(UTC)
    for n in range(3):
        for student_id in (gone, 987654, ada):
            send(broker, seen(student_id, t0 + timedelta(seconds=n)))
    wait_until(
        lambda: scalar(engine, "SELECT COUNT(*) FROM identity_events") == 9, 20, "nine events recorded"
    )
    wait_until(lambda: broker.depth(topology.IDENTITY_QUEUE) == 0, 10, "the queue drained")
    assert broker.depth(topology.DEAD_IDENTITY_QUEUE) == 0
    with engine.connect() as connection:
        marked = connection.execute(sa.text("SELECT student_id FROM attendance")).scalars().all()
    assert marked == [ada]
    log = recorder.log()
    for ignored in (gone, 987654):  # said once per student, at WARNING
        [line] = [line for line in log.splitlines() if f"sightings of student {ignored}:" in line]
        assert "WARNING" in line


def test_finding_16_a_mark_recovered_after_a_crash_is_announced(
    engine: sa.Engine,
    broker: TestBroker,
    start_recorder: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    ada = student(engine, "S1", "Ada Lovelace")
    (tmp_path / "a.csv").write_text(",".join(CSV_COLUMNS) + "\n")
    # Committed, then the recorder died before the CSV and before announcing it.
    batch = AttendanceStore(engine, ZoneInfo("UTC"), MarkPolicy()).record([seen(ada)])
    marks = broker.tap(topology.ATTENDANCE_EXCHANGE)
    recorder = start_recorder()
    wait_until(lambda: "consuming recorder.cameras" in recorder.log(), 30, "the recorder")
    heartbeat = CameraHeartbeat(
        camera_id="room-1", camera_name="Room 1", source="test", frames_published=1, status="streaming"
    )
    broker.publish(topology.CAPTURE_EXCHANGE, topology.heartbeat_key("room-1"), heartbeat)
    announced = wait_until(lambda: broker.drain(marks), 15, "the recovered mark's announcement")
    assert [m["attendance_id"] for m in announced] == [batch.marks[0].attendance_id]  # type: ignore[attr-defined]
