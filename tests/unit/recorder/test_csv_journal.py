import csv
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from services.common.attendance import CSV_COLUMNS, AttendanceMark
from services.recorder.csv_journal import CsvJournal

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
    assert journal.reconcile([mark(1), mark(2), mark(3)], []) == [mark(2), mark(3)]
    assert journal.reconcile([mark(1), mark(2), mark(3)], []) == []
    assert [r[0] for r in rows(journal.path)[1:]] == ["1", "2", "3"]


def test_a_line_torn_by_a_crash_is_cut_before_appending(tmp_path: Path) -> None:
    journal = CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC"))
    journal.open()
    journal.append([mark(1)])
    with journal.path.open("a") as file:
        file.write("2,1,Maths,cam,2,S2,Ad")  # the crash came mid-row
    journal.open()
    assert journal.logged_events() == {"event-1"}
    journal.reconcile([mark(1), mark(2)], [])
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
    journal = CsvJournal(path, ZoneInfo("UTC"))
    assert journal.open() is False
    assert journal.problem is not None and "RECORDER_CSV_PATH" in journal.problem
    assert "'name,date'" in journal.problem
    assert journal.append([mark(1)]) == [] and journal.reconcile([mark(1)], []) == []
    assert path.read_text() == "name,date\nAda,2026-12-01\n"
    assert journal.retry() is False  # unchanged: not read again


def test_a_refused_file_is_picked_up_again_once_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("name;date\n")
    journal = CsvJournal(path, ZoneInfo("UTC"))
    assert journal.open() is False
    assert journal.problem is not None and "';'" in journal.problem
    path.rename(tmp_path / "mine.csv")
    assert journal.retry() is True and journal.problem is None
    assert journal.append([mark(1)]) == [mark(1)]
    assert [r[0] for r in rows(path)] == ["attendance_id", "1"]


def test_a_file_in_another_encoding_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(",".join(CSV_COLUMNS).encode() + b"\n1,1,Caf\xe9\n")
    journal = CsvJournal(path, ZoneInfo("UTC"))
    assert journal.open() is False
    assert journal.problem is not None and "not UTF-8" in journal.problem


def test_a_spreadsheets_bom_and_crlf_are_kept_and_followed(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ",".join(CSV_COLUMNS).encode() + b"\r\n")
    journal = CsvJournal(path, ZoneInfo("UTC"))
    assert journal.open() is True
    journal.append([mark(1)])
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.endswith(b"\r\n") and data.count(b"\n") == 2
    journal.open()
    assert journal.logged_events() == {"event-1"}


def test_a_complete_last_row_without_its_line_end_is_kept(tmp_path: Path) -> None:
    journal = CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC"))
    journal.open()
    journal.append([mark(1)])
    journal.path.write_bytes(journal.path.read_bytes()[:-1])  # as some editors save it
    journal.open()
    assert journal.logged_events() == {"event-1"}
    journal.append([mark(2)])
    assert [r[0] for r in rows(journal.path)[1:]] == ["1", "2"]


def test_rows_are_known_by_event_id_not_by_attendance_id(tmp_path: Path) -> None:
    journal = CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC"))
    journal.open()
    journal.append([mark(1)])
    after_reset = dataclasses.replace(mark(1), event_id="event-new")  # id 1 again, another mark
    assert journal.reconcile([after_reset], []) == [after_reset]
    assert [r[CSV_COLUMNS.index("event_id")] for r in rows(journal.path)[1:]] == ["event-1", "event-new"]


def test_text_cells_cannot_start_a_formula_and_read_back(tmp_path: Path) -> None:
    journal = CsvJournal(tmp_path / "a.csv", ZoneInfo("UTC"))
    journal.open()
    names = ['=HYPERLINK("x")', "@SUM(1)", "+1", "-2", "\tx", "\rx", "a\rb", "Ada"]
    journal.append([dataclasses.replace(mark(n), student_name=name) for n, name in enumerate(names, 1)])
    got = [dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows(journal.path)[1:]]
    assert [r["student_name"] for r in got] == ["'" + n if n[0] in "=+-@\t\r" else n for n in names]
    assert got[0]["distance"] == "0.4123" and got[0]["first_seen_at"] == "2026-12-01T08:05:09+00:00"
