"""Statuses and the journal in the recorder, on the real MariaDB and a real CSV file: absences
decided when a session has ended (also when the recorder missed the moment), a late sighting
undoing the system's absence but never a person's status, and the CSV journal of marks and
changes (crash repair appends the changes it lacks; a file of the previous layout is upgraded
in place and keeps every row)."""

import csv
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from services.common.attendance import CSV_COLUMNS, PREVIOUS_CSV_COLUMNS, csv_line
from services.common.corrections import Actor, set_status
from services.common.messages import AttendanceChanged, AttendanceMarked, FaceBox, FaceRecognized
from services.common.students import create_student
from services.recorder.csv_journal import CsvJournal
from services.recorder.service import AttendanceRecorder
from services.recorder.store import AttendanceStore, MarkPolicy

pytestmark = pytest.mark.integration

UTC_ZONE = ZoneInfo("UTC")
NOW = datetime.now(UTC).replace(microsecond=0)
TEACHER = Actor("person", "teacher (user 7)", None)


def seen(student_id: int, at: datetime) -> FaceRecognized:
    return FaceRecognized(
        camera_id="room-1",
        frame_seq=1,
        captured_at=at,
        box=FaceBox(top=0, right=90, bottom=90, left=0),
        worker="w",
        student_id=student_id,
        student_number=f"S{student_id}",
        student_name="x",
        distance=0.4,
    )


@pytest.fixture
def ended(engine: sa.Engine) -> dict[str, int]:
    """A course session that ended a minute ago (not finalized); Ann, Ben and Cat on the roster,
    Dan on it too but deleted."""
    with engine.begin() as connection:
        ids = {
            name: create_student(connection, f"S-{name}", name).id for name in ("Ann", "Ben", "Cat", "Dan")
        }
        connection.execute(
            sa.text("UPDATE students SET deleted_at = NOW(6) WHERE id = :id"), {"id": ids["Dan"]}
        )
        course = connection.execute(
            sa.text("INSERT INTO courses (code, name) VALUES ('M1', 'Maths')")
        ).lastrowid
        connection.execute(
            sa.text("INSERT INTO course_students (course_id, student_id) VALUES (:c, :s)"),
            [{"c": course, "s": student} for student in ids.values()],
        )
        connection.execute(sa.text("INSERT INTO cameras (id, name) VALUES ('room-1', 'Room 1')"))
        session = connection.execute(
            sa.text(
                "INSERT INTO class_sessions (name, camera_id, course_id, starts_at, ends_at) "
                "VALUES ('Maths', 'room-1', :c, :start, :end)"
            ),
            {
                "c": course,
                "start": (NOW - timedelta(hours=1)).replace(tzinfo=None),
                "end": (NOW - timedelta(minutes=1)).replace(tzinfo=None),
            },
        ).lastrowid
    return {**ids, "session": int(session)}


def statuses(engine: sa.Engine) -> dict[int, tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT student_id, status, source FROM attendance"))
        return {int(r.student_id): (r.status, r.source) for r in rows}


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        return list(csv.DictReader(file))


def test_a_roster_student_not_seen_is_absent_once_the_session_ended_and_a_late_sighting_undoes_it(
    engine: sa.Engine, ended: dict[str, int], tmp_path: Path
) -> None:
    store = AttendanceStore(engine, UTC_ZONE, MarkPolicy(late_after_min=10))
    store.record([seen(ended["Ann"], NOW - timedelta(minutes=55))])  # Ann came in time
    with engine.begin() as connection:  # Cat's teacher excused her before the end
        set_status(connection, ended["session"], ended["Cat"], "excused", actor=TEACHER, reason="ill")
    recorder = AttendanceRecorder(store, CsvJournal(tmp_path / "a.csv", UTC_ZONE))
    recorder.start()  # a restart after the end: the tick decides what the recorder missed

    announced = recorder.tick()
    assert statuses(engine) == {
        ended["Ann"]: ("present", "recognition"),
        ended["Ben"]: ("absent", "system"),  # not seen; Dan is deleted: nothing
        ended["Cat"]: ("excused", "person"),
    }
    with engine.connect() as connection:
        assert connection.execute(
            sa.text("SELECT finalized_at IS NOT NULL FROM class_sessions WHERE id = :id"),
            {"id": ended["session"]},
        ).scalar()
    assert [(type(o.message).__name__, o.message.student_id) for o in announced] == [  # type: ignore[attr-defined]
        ("AttendanceMarked", ended["Ann"]),  # restored to the CSV at start, never announced
        ("AttendanceMarked", ended["Cat"]),
        ("AttendanceMarked", ended["Ben"]),  # decided on the tick
    ]
    assert recorder.tick() == []  # decided once

    # A backlog: Ben's and Cat's sightings from the middle of the lesson arrive now.
    batch = store.record(
        [seen(ended["Ben"], NOW - timedelta(minutes=30)), seen(ended["Cat"], NOW - timedelta(minutes=30))]
    )
    assert batch.marks == []
    assert [(c.student_id, c.from_status, c.to_status, c.source) for c in batch.changes] == [
        (ended["Ben"], "absent", "late", "recognition")
    ]
    assert statuses(engine)[ended["Cat"]] == ("excused", "person")  # a person's status stands
    with engine.connect() as connection:
        cat = connection.execute(
            sa.text("SELECT sightings, first_seen_at FROM attendance WHERE student_id = :s"),
            {"s": ended["Cat"]},
        ).one()
    assert cat.sightings == 1 and cat.first_seen_at is not None  # ...but her sightings count

    [change] = [o.message for o in recorder.tick()]
    assert (
        isinstance(change, AttendanceChanged) and change.status == "late" and change.from_status == "absent"
    )
    rows = csv_rows(tmp_path / "a.csv")
    ben_mark = next(r for r in rows if r["student_id"] == str(ended["Ben"]) and not r["corrects"])
    assert (ben_mark["status"], ben_mark["source"], ben_mark["first_seen_at"]) == ("absent", "system", "")
    assert rows[-1]["corrects"] == ben_mark["event_id"] == str(change.corrects)
    assert (rows[-1]["status"], rows[-1]["source"], rows[-1]["event_id"]) == (
        "late",
        "recognition",
        str(change.change_event_id),
    )


def test_crash_repair_appends_the_changes_the_csv_lacks(
    engine: sa.Engine, ended: dict[str, int], tmp_path: Path
) -> None:
    store = AttendanceStore(engine, UTC_ZONE, MarkPolicy())
    path = tmp_path / "a.csv"
    first = AttendanceRecorder(store, CsvJournal(path, UTC_ZONE))
    first.start()
    marked = store.record([seen(ended["Ann"], NOW - timedelta(minutes=50))]).marks
    first.handle([])  # nothing to handle; the mark is journaled by the tick or the next batch
    first.tick()
    # A teacher corrects Ann twice; the recorder dies before its tick journals either change.
    with engine.begin() as connection:
        set_status(
            connection, ended["session"], ended["Ann"], "absent", actor=TEACHER, reason="not her: her twin"
        )
        set_status(
            connection, ended["session"], ended["Ann"], "excused", actor=TEACHER, reason="at the dentist"
        )
    before = csv_rows(path)
    assert [r["event_id"] for r in before if r["student_id"] == str(ended["Ann"])] == [marked[0].event_id]

    restarted = AttendanceRecorder(store, CsvJournal(path, UTC_ZONE))
    restarted.start()
    rows = csv_rows(path)
    assert rows[: len(before)] == before  # nothing rewritten
    ann = [r for r in rows if r["student_id"] == str(ended["Ann"])]
    assert [(r["status"], r["source"], r["reason"], r["corrects"]) for r in ann] == [
        ("present", "recognition", "", ""),
        ("absent", "person", "not her: her twin", marked[0].event_id),
        ("excused", "person", "at the dentist", marked[0].event_id),
    ]
    # MySQL and the CSV agree row for row: every mark and change, once.
    with engine.connect() as connection:
        keys = set(connection.execute(sa.text("SELECT mark_event_id FROM attendance")).scalars())
        keys |= set(connection.execute(sa.text("SELECT change_event_id FROM attendance_changes")).scalars())
    assert sorted(r["event_id"] for r in rows) == sorted(keys)
    # Restored rows are announced (they never were), then not again.
    announced = restarted.tick()
    assert [type(o.message) for o in announced][:2] == [AttendanceChanged, AttendanceChanged]
    assert restarted.tick() == []


def test_a_csv_of_the_previous_layout_is_upgraded_in_place_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    old_rows = [
        [str(n), "1", "Maths", "room-1", str(n), f"S{n}", f"=cmd{n}", "present", f"2026-03-02T09:0{n}:00+00:00",
         "0.4000", str(uuid.uuid4()), f"2026-03-02T09:0{n}:01+00:00"]
        for n in range(1, 4)
    ]  # fmt: skip
    # As a spreadsheet saved it: a byte-order mark and CRLF line ends.
    path.write_bytes(
        b"\xef\xbb\xbf"
        + "".join(csv_line(row, "\r\n") for row in [list(PREVIOUS_CSV_COLUMNS), *old_rows]).encode()
    )
    journal = CsvJournal(path, UTC_ZONE)
    assert journal.open() and journal.problem is None
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") == 4
    rows = csv_rows(path)
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [[r[c] for c in PREVIOUS_CSV_COLUMNS] for r in rows] == old_rows  # every cell as it was
    assert {(r["source"], r["reason"], r["corrects"]) for r in rows} == {("recognition", "", "")}
    assert all(journal.has(row[PREVIOUS_CSV_COLUMNS.index("event_id")]) for row in old_rows)
    assert not list(tmp_path.glob(".*upgrade*"))  # the temporary file was renamed over the old one
    assert CsvJournal(path, UTC_ZONE).open()  # upgraded once: opening again changes nothing
    assert path.read_bytes() == data


def test_an_announced_mark_of_a_person_carries_no_sightings(
    engine: sa.Engine, ended: dict[str, int], tmp_path: Path
) -> None:
    store = AttendanceStore(engine, UTC_ZONE, MarkPolicy())
    recorder = AttendanceRecorder(store, CsvJournal(tmp_path / "a.csv", UTC_ZONE))
    recorder.start()
    with engine.begin() as connection:
        set_status(
            connection, ended["session"], ended["Ben"], "present", actor=TEACHER, reason="came without camera"
        )
    marks = [o.message for o in recorder.tick() if isinstance(o.message, AttendanceMarked)]
    [mark] = [m for m in marks if m.student_id == ended["Ben"]]
    assert (mark.status, mark.source, mark.first_seen_at, mark.distance) == ("present", "person", None, None)


def test_a_courses_own_grace_decides_late_before_the_schools(
    engine: sa.Engine, ended: dict[str, int]
) -> None:
    # The school says late after 30 minutes; this course after 5: a first sighting 10 minutes
    # in is late here. Back to the school's default, another student's same sighting is present.
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE courses SET late_after_min = 5"))
    store = AttendanceStore(engine, UTC_ZONE, MarkPolicy(late_after_min=30))
    store.record([seen(ended["Ann"], NOW - timedelta(minutes=50))])
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE courses SET late_after_min = NULL"))
    store.record([seen(ended["Ben"], NOW - timedelta(minutes=50))])
    assert statuses(engine) == {
        ended["Ann"]: ("late", "recognition"),
        ended["Ben"]: ("present", "recognition"),
    }
