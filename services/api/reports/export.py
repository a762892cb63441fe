"""Each report as a CSV document: text cells through `safe_cell` (a spreadsheet never runs a
name as a formula), times in the school's zone, rates as percentages with one decimal."""

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from services.api.reports.queries import CourseReport, Mark, SessionReport, StudentReport
from services.common.attendance import csv_line, local_iso, safe_cell

SESSION_COLUMNS = (
    "session_id", "session_name", "course_code", "camera_id", "starts_at", "ends_at",
    "student_id", "student_number", "student_name", "on_roster", "status",
    "first_seen_at", "last_seen_at", "source", "reason", "confidence",
)  # fmt: skip
STUDENT_COLUMNS = (
    "student_id", "student_number", "student_name", "session_id", "session_name", "course_code",
    "camera_id", "starts_at", "ends_at", "status", "first_seen_at", "last_seen_at", "source", "reason",
    "confidence",
)  # fmt: skip
# Then one column per session, then these.
COURSE_LEAD = ("student_id", "student_number", "student_name", "on_roster")
COURSE_TAIL = ("present", "late", "absent", "excused", "not_seen", "rate_percent", "below_threshold")
SESSION_RATE_ROW = "rate per session"


def rate_cell(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}"


def _time(moment: datetime | None, tz: ZoneInfo) -> str:
    return "" if moment is None else local_iso(moment, tz)


def _text(value: str | None) -> str:
    return safe_cell(value or "")


def _roll_cells(mark: Mark | None, tz: ZoneInfo) -> list[str]:
    """first_seen_at, last_seen_at, source, reason, confidence (empty without a row)."""
    if mark is None:
        return [""] * 5
    return [
        _time(mark.first_seen_at, tz),
        _time(mark.last_seen_at, tz),
        mark.source,
        _text(mark.reason),
        _text(mark.confidence),
    ]


def _document(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    return "".join([csv_line(header), *(csv_line(row) for row in rows)])


def session_csv(report: SessionReport, tz: ZoneInfo) -> str:
    session = report.session
    lead = [
        session.id,
        _text(session.name),
        _text(report.course.code if report.course else ""),
        _text(session.camera_id),
        _time(session.starts_at, tz),
        _time(session.ends_at, tz),
    ]
    rows = [
        [
            *lead,
            line.student.id,
            _text(line.student.student_number),
            _text(line.student.name),
            "yes" if line.on_roster else "no",
            line.status,
            *_roll_cells(line.mark, tz),
        ]
        for line in report.lines
    ]
    return _document(SESSION_COLUMNS, rows)


def student_csv(report: StudentReport, tz: ZoneInfo) -> str:
    student = report.student
    lead = [student.id, _text(student.student_number), _text(student.name)]
    rows = [
        [
            *lead,
            line.session.id,
            _text(line.session.name),
            _text(line.course.code if line.course else ""),
            _text(line.session.camera_id),
            _time(line.session.starts_at, tz),
            _time(line.session.ends_at, tz),
            line.status,
            *_roll_cells(line.mark, tz),
        ]
        for line in report.lines
    ]
    return _document(STUDENT_COLUMNS, rows)


def session_heading(name: str, starts_at: datetime, tz: ZoneInfo) -> str:
    """A course CSV's column of one session: "2026-09-07 08:30 Maths"."""
    return safe_cell(f"{starts_at.astimezone(tz).strftime('%Y-%m-%d %H:%M')} {name}")


def course_csv(report: CourseReport, tz: ZoneInfo) -> str:
    """The table as a spreadsheet shows it: a student per row, a session per column, each
    student's counts and rate at the end, and a last row with each session's rate."""
    header = [
        *COURSE_LEAD,
        *(session_heading(c.session.name, c.session.starts_at, tz) for c in report.sessions),
        *COURSE_TAIL,
    ]
    rows: list[list[object]] = [
        [
            line.student.id,
            _text(line.student.student_number),
            _text(line.student.name),
            "yes" if line.on_roster else "no",
            *line.statuses,
            line.tally.present,
            line.tally.late,
            line.tally.absent,
            line.tally.excused,
            line.tally.not_seen,
            rate_cell(line.tally.rate),
            "yes" if line.below else "no",
        ]
        for line in report.students
    ]
    total = report.tally
    rows.append(
        [
            "",
            "",
            SESSION_RATE_ROW,
            "",
            *(rate_cell(column.tally.rate) for column in report.sessions),
            total.present,
            total.late,
            total.absent,
            total.excused,
            total.not_seen,
            rate_cell(total.rate),
            "",
        ]
    )
    return _document(header, rows)
