import csv
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.common.attendance import CSV_COLUMNS, AttendanceMark
from services.recorder.csv_journal import CsvHeaderError, CsvJournal

T = datetime(2026, 12, 1, 8, 5, 9, tzinfo=UTC)


def mark(attendance_id: int) -> AttendanceMark:
    return AttendanceMark(
        attendance_id=attendance_id,
        session_id=1,
        session_name="Maths, room 2",
        camera_id="cam",
        student_id=attendance_id,
        student_number=f"S{attendance_id}",
        student_name='Ada "the" Lovelace',
        status="present",
        first_seen_at=T,
        last_seen_at=T,
        distance=0.41234,
        best_distance=0.4,
        sightings=1,
        event_id=f"event-{attendance_id}",
        marked_at=T,
    )


def rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as file:
        return list(csv.reader(file))


def test_a_new_file_gets_the_header_then_one_row_per_mark(tmp_path: Path) -> None:
    journal = CsvJournal(tmp_path / "deep" / "attendance.csv", ZoneInfo("Europe/Paris"))
    journal.open()
    journal.append([mark(1), mark(2)])
    header, first, second = rows(journal.path)
    assert tuple(header) == CSV_COLUMNS
    record = dict(zip(header, first, strict=True))
    assert record["student_name"] == 'Ada "the" Lovelace'  # quoting survives
    assert record["first_seen_at"] == "2026-12-01T09:05:09+01:00"  # the school's local time
    assert record["distance"] == "0.4123"
    assert second[0] == "2"


def test_reconcile_appends_exactly_what_mysql_has_and_the_file_lacks(tmp_path: Path) -> None:
    journal = CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC"))
    journal.open()
    journal.append([mark(1)])
    assert journal.reconcile([mark(1), mark(2), mark(3)]) == 2
    assert journal.reconcile([mark(1), mark(2), mark(3)]) == 0
    assert [r[0] for r in rows(journal.path)[1:]] == ["1", "2", "3"]


def test_a_line_torn_by_a_crash_is_cut_before_appending(tmp_path: Path) -> None:
    journal = CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC"))
    journal.open()
    journal.append([mark(1)])
    with journal.path.open("a") as file:
        file.write("2,1,Maths,cam,2,S2,Ad")  # the crash came mid-row
    journal.open()
    assert journal.logged_ids() == {1}
    journal.reconcile([mark(1), mark(2)])
    assert [r[0] for r in rows(journal.path)[1:]] == ["1", "2"]
    assert all(len(r) == len(CSV_COLUMNS) for r in rows(journal.path))


def test_a_torn_header_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("attendance_id,sess")
    CsvJournal(path, ZoneInfo("UTC")).open()
    assert tuple(rows(path)[0]) == CSV_COLUMNS


def test_a_file_with_other_columns_is_refused_not_mixed(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("name,date\nAda,2026-12-01\n")
    with pytest.raises(CsvHeaderError, match="RECORDER_CSV_PATH"):
        CsvJournal(path, ZoneInfo("UTC")).open()
    assert path.read_text() == "name,date\nAda,2026-12-01\n"
