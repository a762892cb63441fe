"""An attendance mark as stored in MySQL and written to CSV, shared by the recorder (which
writes both) and the API (which exports the same columns). The fields it shows everywhere are
defined once, in services.common.messages.MarkFields; the rest is what MySQL keeps beside them."""

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.messages import MARK_FIELDS

# The file's columns: the fields every view of a mark shows, then which sighting made it and when.
CSV_COLUMNS: tuple[str, ...] = (*MARK_FIELDS, "event_id", "marked_at")


@dataclass(frozen=True)
class AttendanceMark:
    attendance_id: int
    session_id: int
    session_name: str
    camera_id: str
    student_id: int
    student_number: str
    student_name: str
    status: str
    first_seen_at: datetime  # aware, UTC
    last_seen_at: datetime
    distance: float  # of the sighting that made the mark
    best_distance: float
    sightings: int
    event_id: str
    marked_at: datetime
    # "check": named on thin evidence (services/faces/decision.py), for a person to confirm;
    # None for marks made before recognition reported it.
    confidence: str | None = None

    def csv_row(self, tz: ZoneInfo) -> list[str]:
        return [_cell(getattr(self, column), tz) for column in CSV_COLUMNS]


# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: one starting like a formula gets a leading quote.

    Only text is neutralised (names, numbers, session names: what people type); the cells we
    format ourselves (ids, times, distances) never start with a trigger, so they stay as they
    are and a spreadsheet still sees numbers and dates."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _cell(value: object, tz: ZoneInfo) -> str:
    if isinstance(value, datetime):
        return local_iso(value, tz)
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, str):
        return safe_cell(value)
    return str(value)


def csv_line(cells: Iterable[object], newline: str = "\n") -> str:
    """One CSV record ending in `newline`. Any cell holding a CR or an LF is quoted, whatever
    the line end (the csv module quotes only the characters of its own line terminator, so a
    bare CR in a name would otherwise start a new row for every reader)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells)
    return buffer.getvalue()[:-2] + newline


def local_iso(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).isoformat(timespec="seconds")


def as_utc(naive: datetime) -> datetime:
    """MySQL DATETIME values are naive UTC; make them aware."""
    return naive.replace(tzinfo=UTC)


def to_db(moment: datetime) -> datetime:
    """An aware datetime as the naive UTC value MySQL stores."""
    return moment.astimezone(UTC).replace(tzinfo=None)


MARKS_QUERY = """
SELECT a.id, a.session_id, cs.name AS session_name, cs.camera_id, a.student_id, s.student_number,
       s.name AS student_name, a.status, a.first_seen_at, a.last_seen_at, a.mark_distance,
       a.best_distance, a.sightings, a.mark_event_id, a.marked_at, a.confidence
FROM attendance a
JOIN class_sessions cs ON cs.id = a.session_id
JOIN students s ON s.id = a.student_id
"""


def fetch_marks(
    connection: Connection, where: str = "", params: dict[str, object] | None = None
) -> list[AttendanceMark]:
    """Marks matching an SQL condition on `a` (attendance), `cs` (session), `s` (student), by id."""
    query = sa.text(MARKS_QUERY + (f" WHERE {where}" if where else "") + " ORDER BY a.id")
    params = params or {}
    # Tuple and list parameters expand to IN (...) lists.
    query = query.bindparams(
        *(sa.bindparam(k, expanding=True) for k, v in params.items() if isinstance(v, list | tuple))
    )
    return [
        AttendanceMark(
            attendance_id=int(r.id),
            session_id=int(r.session_id),
            session_name=r.session_name,
            camera_id=r.camera_id,
            student_id=int(r.student_id),
            student_number=r.student_number,
            student_name=r.student_name,
            status=r.status,
            first_seen_at=as_utc(r.first_seen_at),
            last_seen_at=as_utc(r.last_seen_at),
            distance=float(r.mark_distance),
            best_distance=float(r.best_distance),
            sightings=int(r.sightings),
            event_id=r.mark_event_id,
            marked_at=as_utc(r.marked_at),
            confidence=r.confidence,
        )
        for r in connection.execute(query, params)
    ]


def csv_text(marks: Iterable[AttendanceMark], tz: ZoneInfo) -> str:
    """A whole CSV document (header and rows), as the API's downloads serve it."""
    return "".join([csv_line(CSV_COLUMNS), *(csv_line(mark.csv_row(tz)) for mark in marks)])
