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

# The file's columns: the fields every view of a mark shows, then which event made the row and
# when, who made it and why, and (on a change's row) the event_id of the mark it changes.
CSV_COLUMNS: tuple[str, ...] = (*MARK_FIELDS, "event_id", "marked_at", "source", "reason", "corrects")
# The layout before statuses could change (upgraded in place: services/recorder/csv_journal.py).
PREVIOUS_CSV_COLUMNS: tuple[str, ...] = CSV_COLUMNS[: CSV_COLUMNS.index("source")]


@dataclass(frozen=True)
class AttendanceMark:
    """A row of `attendance`: who made it (`source`, `reason`: the mark's own) and its status now.
    A person's or the system's mark has no sightings: its times and distances are None."""

    attendance_id: int
    session_id: int
    session_name: str
    camera_id: str
    student_id: int
    student_number: str
    student_name: str
    status: str  # now
    first_seen_at: datetime | None  # aware, UTC
    last_seen_at: datetime | None
    distance: float | None  # of the sighting that made the mark
    best_distance: float | None
    sightings: int
    event_id: str
    marked_at: datetime
    # "check": named on thin evidence (services/faces/decision.py), for a person to confirm;
    # None for marks made before recognition reported it, and for marks not made by recognition.
    confidence: str | None = None
    source: str = "recognition"  # recognition | person | system: who made the mark
    reason: str = ""
    marked_by: str | None = None  # a person's mark: who, as the audit log names them
    # The status the mark was made with (its CSV row's), if changed since; None: `status`.
    marked_status: str | None = None
    set_by: str | None = None  # who set the status now (the latest change's source); None: `source`
    status_reason: str | None = None  # why (the latest change's reason); None: `reason`

    @property
    def actor(self) -> str:
        """Who made the mark: a person as the audit log names them, or recognition, or system."""
        return self.marked_by or self.source

    @property
    def current_source(self) -> str:
        return self.set_by or self.source

    @property
    def current_reason(self) -> str:
        return self.reason if self.status_reason is None else self.status_reason

    def csv_row(self, tz: ZoneInfo) -> list[str]:
        """The mark as it was made: a later change is a row of its own (AttendanceChange)."""
        values: dict[str, object] = {"status": self.marked_status or self.status, "corrects": ""}
        if self.source != "recognition":  # sightings a later change brought are not the mark's
            values |= {"first_seen_at": None, "distance": None}
        return [_cell(values[c] if c in values else getattr(self, c), tz) for c in CSV_COLUMNS]


@dataclass(frozen=True)
class AttendanceChange:
    """A row of `attendance_changes`, with its mark's session and student (a change's CSV row
    and its announcement show the same fields as a mark's)."""

    change_id: int
    change_event_id: str
    attendance_id: int
    session_id: int
    session_name: str
    camera_id: str
    student_id: int
    student_number: str
    student_name: str
    changed_at: datetime
    source: str
    actor: str
    actor_user_id: int | None
    from_status: str
    to_status: str
    reason: str
    corrects: str  # the mark's event_id
    # The row's sightings as they stand (for a live roster line), not part of the CSV row.
    first_seen_at: datetime | None = None
    distance: float | None = None

    @property
    def status(self) -> str:
        return self.to_status

    def csv_row(self, tz: ZoneInfo) -> list[str]:
        values: dict[str, object] = {
            "status": self.to_status,
            "first_seen_at": None,
            "distance": None,
            "event_id": self.change_event_id,
            "marked_at": self.changed_at,
        }
        return [_cell(values[c] if c in values else getattr(self, c), tz) for c in CSV_COLUMNS]


# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: one starting like a formula gets a leading quote.

    Only text is neutralised (names, numbers, session names: what people type); the cells we
    format ourselves (ids, times, distances) never start with a trigger, so they stay as they
    are and a spreadsheet still sees numbers and dates."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def _cell(value: object, tz: ZoneInfo) -> str:
    if value is None:
        return ""
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


# A row's first change says which status the mark was made with; its latest, who set it now.
MARKS_QUERY = """
SELECT a.id, a.session_id, cs.name AS session_name, cs.camera_id, a.student_id, s.student_number,
       s.name AS student_name, a.status, a.first_seen_at, a.last_seen_at, a.mark_distance,
       a.best_distance, a.sightings, a.mark_event_id, a.marked_at, a.confidence, a.source, a.reason,
       a.marked_by, fc.from_status AS marked_status, lc.source AS set_by, lc.reason AS status_reason
FROM attendance a
JOIN class_sessions cs ON cs.id = a.session_id
JOIN students s ON s.id = a.student_id
LEFT JOIN attendance_changes fc ON fc.id = (
  SELECT MIN(c.id) FROM attendance_changes c WHERE c.attendance_id = a.id)
LEFT JOIN attendance_changes lc ON lc.id = (
  SELECT MAX(c.id) FROM attendance_changes c WHERE c.attendance_id = a.id)
"""

CHANGES_QUERY = """
SELECT ch.id, ch.change_event_id, ch.attendance_id, a.session_id, cs.name AS session_name, cs.camera_id,
       a.student_id, s.student_number, s.name AS student_name, ch.changed_at, ch.source, ch.actor,
       ch.actor_user_id, ch.from_status, ch.to_status, ch.reason, a.mark_event_id, a.first_seen_at,
       a.mark_distance
FROM attendance_changes ch
JOIN attendance a ON a.id = ch.attendance_id
JOIN class_sessions cs ON cs.id = a.session_id
JOIN students s ON s.id = a.student_id
"""


def _query(base: str, where: str, order: str, params: dict[str, object]) -> sa.TextClause:
    query = sa.text(base + (f" WHERE {where}" if where else "") + f" ORDER BY {order}")
    # Tuple and list parameters expand to IN (...) lists.
    return query.bindparams(
        *(sa.bindparam(k, expanding=True) for k, v in params.items() if isinstance(v, list | tuple))
    )


def _utc_or_none(naive: datetime | None) -> datetime | None:
    return None if naive is None else as_utc(naive)


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def fetch_marks(
    connection: Connection, where: str = "", params: dict[str, object] | None = None
) -> list[AttendanceMark]:
    """Marks matching an SQL condition on `a` (attendance), `cs` (session), `s` (student), by id."""
    params = params or {}
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
            first_seen_at=_utc_or_none(r.first_seen_at),
            last_seen_at=_utc_or_none(r.last_seen_at),
            distance=_float_or_none(r.mark_distance),
            best_distance=_float_or_none(r.best_distance),
            sightings=int(r.sightings),
            event_id=r.mark_event_id,
            marked_at=as_utc(r.marked_at),
            confidence=r.confidence,
            source=r.source,
            reason=r.reason,
            marked_by=r.marked_by,
            marked_status=r.marked_status,
            set_by=r.set_by,
            status_reason=r.status_reason,
        )
        for r in connection.execute(_query(MARKS_QUERY, where, "a.id", params), params)
    ]


def fetch_changes(
    connection: Connection, where: str = "", params: dict[str, object] | None = None
) -> list[AttendanceChange]:
    """Changes matching an SQL condition on `ch` (the change), `a`, `cs`, `s` (as fetch_marks), by id."""
    params = params or {}
    return [
        AttendanceChange(
            change_id=int(r.id),
            change_event_id=r.change_event_id,
            attendance_id=int(r.attendance_id),
            session_id=int(r.session_id),
            session_name=r.session_name,
            camera_id=r.camera_id,
            student_id=int(r.student_id),
            student_number=r.student_number,
            student_name=r.student_name,
            changed_at=as_utc(r.changed_at),
            source=r.source,
            actor=r.actor,
            actor_user_id=None if r.actor_user_id is None else int(r.actor_user_id),
            from_status=r.from_status,
            to_status=r.to_status,
            reason=r.reason,
            corrects=r.mark_event_id,
            first_seen_at=_utc_or_none(r.first_seen_at),
            distance=_float_or_none(r.mark_distance),
        )
        for r in connection.execute(_query(CHANGES_QUERY, where, "ch.id", params), params)
    ]


JournalRow = AttendanceMark | AttendanceChange


def journal_order(marks: Iterable[AttendanceMark], changes: Iterable[AttendanceChange]) -> list[JournalRow]:
    """Marks and changes as the journal has them: by when they were made (a mark before its changes)."""
    rows: list[tuple[datetime, int, int, JournalRow]] = [(m.marked_at, 0, m.attendance_id, m) for m in marks]
    rows += [(c.changed_at, 1, c.change_id, c) for c in changes]
    return [row for *_, row in sorted(rows, key=lambda r: r[:3])]


@dataclass(frozen=True)
class HistoryEntry:
    """One row of the journal as a person reads it: a mark made, or a change of its status."""

    kind: str  # mark | change
    event_id: str  # the row's event_id in the CSV
    at: datetime
    attendance_id: int
    session_id: int
    student_id: int
    student_number: str
    student_name: str
    source: str
    actor: str
    from_status: str | None  # None: a mark
    to_status: str
    reason: str
    corrects: str | None  # a change: the event_id of the mark it changes


def history(marks: Iterable[AttendanceMark], changes: Iterable[AttendanceChange]) -> list[HistoryEntry]:
    """Marks and their changes as the journal has them (journal_order), oldest first."""
    entries = []
    for row in journal_order(marks, changes):
        from_status: str | None
        corrects: str | None
        if isinstance(row, AttendanceChange):
            event_id, at, from_status, to_status = (
                row.change_event_id,
                row.changed_at,
                row.from_status,
                row.to_status,
            )
            corrects = row.corrects
        else:
            event_id, at, from_status, to_status = (
                row.event_id,
                row.marked_at,
                None,
                row.marked_status or row.status,
            )
            corrects = None
        entries.append(
            HistoryEntry(
                kind="change" if isinstance(row, AttendanceChange) else "mark",
                event_id=event_id,
                at=at,
                attendance_id=row.attendance_id,
                session_id=row.session_id,
                student_id=row.student_id,
                student_number=row.student_number,
                student_name=row.student_name,
                source=row.source,
                actor=row.actor,
                from_status=from_status,
                to_status=to_status,
                reason=row.reason,
                corrects=corrects,
            )
        )
    return entries


def csv_text(marks: Iterable[AttendanceMark], tz: ZoneInfo, changes: Iterable[AttendanceChange] = ()) -> str:
    """A whole CSV document (header and rows: marks and their changes), as the API's downloads serve it."""
    rows = journal_order(marks, changes)
    return "".join([csv_line(CSV_COLUMNS), *(csv_line(row.csv_row(tz)) for row in rows)])
