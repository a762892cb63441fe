"""The recorder's logic with an in-memory stand-in for MySQL (the real one is in tests/integration)."""

import csv
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from services.common.attendance import AttendanceChange, AttendanceMark
from services.common.messages import CameraHeartbeat, FaceBox, FaceRecognized
from services.common.transport import Delivery, TransientError
from services.recorder.csv_journal import CsvJournal
from services.recorder.health import Liveness
from services.recorder.service import AttendanceRecorder
from services.recorder.single import AnotherRecorderError
from services.recorder.store import RecordedBatch

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def sighting(student_id: int) -> FaceRecognized:
    return FaceRecognized(
        camera_id="room",
        frame_seq=1,
        captured_at=NOW,
        box=FaceBox(top=0, right=9, bottom=9, left=0),
        worker="w",
        student_id=student_id,
        student_number=f"S{student_id}",
        student_name="x",
        distance=0.4,
    )


class FlakyCommitStore:
    """Commits like MySQL, but can lose the acknowledgement of a commit (the server has it)."""

    def __init__(self) -> None:
        self.events: set[str] = set()
        self.marks: list[AttendanceMark] = []
        self.lose_next_ack = False

    def record(self, events: list[FaceRecognized]) -> RecordedBatch:
        fresh = [e for e in events if str(e.event_id) not in self.events]
        created = []
        for event in fresh:
            self.events.add(str(event.event_id))
            if all(m.student_id != event.student_id for m in self.marks):
                created.append(
                    AttendanceMark(
                        attendance_id=len(self.marks) + 1,
                        session_id=1,
                        session_name="room 2026-12-01",
                        camera_id="room",
                        student_id=event.student_id,
                        student_number=event.student_number,
                        student_name="x",
                        status="present",
                        first_seen_at=NOW,
                        last_seen_at=NOW,
                        distance=0.4,
                        best_distance=0.4,
                        sightings=1,
                        event_id=str(event.event_id),
                        marked_at=datetime.now(UTC),  # recent: restored marks get announced
                    )
                )
                self.marks.append(created[-1])
        if self.lose_next_ack:
            self.lose_next_ack = False
            raise sa.exc.OperationalError(
                "COMMIT", {}, Exception("Lost connection to MySQL server during query")
            )
        return RecordedBatch(len(fresh), created)

    def all_marks(self) -> list[AttendanceMark]:
        return list(self.marks)

    def all_changes(self) -> list[AttendanceChange]:
        return []

    def unjournaled(
        self, journaled: Callable[[str], bool], after_mark: int, after_change: int
    ) -> tuple[list[AttendanceMark], list[AttendanceChange], int, int]:
        marks = [m for m in self.marks if m.attendance_id > after_mark and not journaled(m.event_id)]
        return marks, [], len(self.marks), 0

    def decide_absences(self, now: datetime, settle: timedelta) -> int:
        return 0


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_a_commit_whose_acknowledgement_was_lost_still_reaches_the_csv_and_is_announced(
    tmp_path: Path,
) -> None:
    store = FlakyCommitStore()
    recorder = AttendanceRecorder(store, CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC")))  # type: ignore[arg-type]
    recorder.start()
    event = sighting(1)
    delivery = Delivery(body=event.model_dump_json().encode(), routing_key="face.recognized.room")
    store.lose_next_ack = True
    with pytest.raises(TransientError):
        recorder.handle([delivery])  # MySQL committed; the recorder was not told
    assert rows(tmp_path / "a.csv") == []
    [handled] = recorder.handle([delivery])  # the retry finds the event already recorded...
    assert [r["event_id"] for r in rows(tmp_path / "a.csv")] == [
        str(event.event_id)
    ]  # ...and the CSV follows
    assert [o.message.student_id for o in handled.publish] == [1]  # type: ignore[attr-defined]
    assert recorder.redeliveries == 1


def test_the_csv_catches_up_after_a_failed_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = FlakyCommitStore()
    journal = CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC"))
    recorder = AttendanceRecorder(store, journal)  # type: ignore[arg-type]
    recorder.start()
    real_append = journal.append

    def disk_full(marks: list[AttendanceMark]) -> int:
        monkeypatch.setattr(journal, "append", real_append)  # only this once
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal, "append", disk_full)
    first = sighting(1)
    recorder.handle([Delivery(body=first.model_dump_json().encode(), routing_key="face.recognized.room")])
    assert rows(journal.path) == []  # MySQL has the mark; the file could not take it
    second = sighting(2)
    recorder.handle([Delivery(body=second.model_dump_json().encode(), routing_key="face.recognized.room")])
    assert [r["student_id"] for r in rows(journal.path)] == ["1", "2"]


def test_a_mark_restored_to_the_csv_at_start_is_announced_with_the_next_message(tmp_path: Path) -> None:
    store = FlakyCommitStore()
    store.record([sighting(1)])  # committed; the recorder died before the CSV
    recorder = AttendanceRecorder(store, CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC")))  # type: ignore[arg-type]
    recorder.start()
    [handled] = recorder.handle(
        [Delivery(body=sighting(2).model_dump_json().encode(), routing_key="face.recognized.room")]
    )
    assert [o.message.student_id for o in handled.publish] == [2, 1]  # type: ignore[attr-defined]
    [again] = recorder.handle(
        [Delivery(body=sighting(3).model_dump_json().encode(), routing_key="face.recognized.room")]
    )
    assert [o.message.student_id for o in again.publish] == [3]  # type: ignore[attr-defined]


def test_the_next_heartbeat_carries_the_restored_marks_when_no_sighting_comes(tmp_path: Path) -> None:
    store = FlakyCommitStore()
    store.record([sighting(1)])
    store.record_heartbeat = lambda heartbeat: None  # type: ignore[attr-defined]
    recorder = AttendanceRecorder(store, CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC")))  # type: ignore[arg-type]
    recorder.start()
    beat = CameraHeartbeat(
        camera_id="room", camera_name="R", source="s", frames_published=1, status="streaming"
    )
    bad, good = recorder.handle_heartbeats(
        [
            Delivery(body=b"{}", routing_key="camera.room"),
            Delivery(body=beat.model_dump_json().encode(), routing_key="camera.room"),
        ]
    )
    assert bad.rejected is not None and not bad.publish
    assert [o.message.student_id for o in good.publish] == [1]  # type: ignore[attr-defined]


def test_a_recorder_that_lost_its_lock_to_another_stops_and_requeues(tmp_path: Path) -> None:
    class TakenLock:
        def check(self) -> None:
            raise AnotherRecorderError("another recorder is already running on database 'x'")

    store = FlakyCommitStore()
    stop = threading.Event()
    recorder = AttendanceRecorder(
        store,  # type: ignore[arg-type]
        CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC")),
        guard=TakenLock(),
        stop=stop,
    )
    recorder.start()
    with pytest.raises(TransientError):  # not a handler error: the batch is not dead-lettered
        recorder.handle(
            [Delivery(body=sighting(1).model_dump_json().encode(), routing_key="face.recognized.room")]
        )
    assert stop.is_set() and recorder.fatal is not None and store.events == set()


def test_a_batch_is_unfinished_for_the_health_file_until_it_succeeds(tmp_path: Path) -> None:
    store = FlakyCommitStore()
    liveness = Liveness(tmp_path / "h.json")
    recorder = AttendanceRecorder(store, CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC")), liveness=liveness)  # type: ignore[arg-type]
    recorder.start()
    delivery = Delivery(body=sighting(1).model_dump_json().encode(), routing_key="face.recognized.room")
    store.lose_next_ack = True
    with pytest.raises(TransientError):
        recorder.handle([delivery])
    liveness.write()
    assert "identity events" in json.loads(liveness.path.read_text())["busy_since"]
    recorder.handle([delivery])
    liveness.write()
    assert json.loads(liveness.path.read_text())["busy_since"] == {}
