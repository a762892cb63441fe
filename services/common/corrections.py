"""The one home for changing a student's attendance status in a session (docs/attendance-record.md,
"Corrections and the journal").

`set_status` works in the caller's transaction: with no row yet it makes a **mark** (an
`attendance` row with `source` person or system and a fresh `mark_event_id`); otherwise it
updates the row's status and appends a **change** (`attendance_changes`, a fresh
`change_event_id`). The recorder journals both to the CSV and announces the changes.

`attendance.source` and `attendance.reason` are the mark's own (who made the row, and why),
never rewritten; who set the row's *current* status is the source of its latest change, else
the mark's. That is what "recognition never overrides a person" looks at.

The rules are pure functions (`check_request`, `decide`), so they are tested without a database.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.attendance import as_utc

Status = Literal["present", "late", "absent", "excused"]
Source = Literal["recognition", "person", "system"]
STATUSES: tuple[str, ...] = get_args(Status)
SOURCES: tuple[str, ...] = get_args(Source)
# What each source may set: recognition sees people, the system only decides absences.
SETTABLE: dict[str, frozenset[str]] = {
    "recognition": frozenset({"present", "late"}),
    "system": frozenset({"absent"}),
    "person": frozenset(STATUSES),
}
MAX_REASON = 500  # attendance.reason, attendance_changes.reason
MAX_ACTOR = 300  # attendance_changes.actor


class InvalidChangeError(ValueError):
    """The request itself is wrong (a status that does not exist, a missing reason): 422."""


class ChangeRefusedError(Exception):
    """A rule forbids the change (a student not on the roster, a person's status that
    recognition may not override, ...): 409."""


class NoSuchTargetError(LookupError):
    """The session or the student does not exist: 404."""


@dataclass(frozen=True)
class Actor:
    """Who asks: a person (`name` as the audit log names them, `user_id` if signed in),
    recognition or the system."""

    source: Source
    name: str
    user_id: int | None = None


RECOGNITION = Actor("recognition", "recognition")
SYSTEM = Actor("system", "system")


@dataclass(frozen=True)
class Current:
    """A row's status as it stands, and who set it."""

    attendance_id: int
    mark_event_id: str
    status: str
    set_by: str  # the source of the latest change, else the mark's


@dataclass(frozen=True)
class Outcome:
    """What `set_status` did: `marked` (a new row), `changed` (a change row), or `unchanged`
    (the status already was that; nothing written)."""

    action: Literal["marked", "changed", "unchanged"]
    attendance_id: int
    mark_event_id: str
    from_status: str | None  # None for a new mark
    to_status: str
    change_id: int | None = None
    change_event_id: str | None = None


# ---- the rules (pure) ----


def check_request(status: str, actor: Actor, reason: str) -> str:
    """A request that makes sense on its own; returns the reason, trimmed. Raises InvalidChangeError."""
    if status not in STATUSES:
        raise InvalidChangeError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    if actor.source not in SOURCES:
        raise InvalidChangeError(f"source must be one of {', '.join(SOURCES)}, not {actor.source!r}")
    if status not in SETTABLE[actor.source]:
        raise InvalidChangeError(f"{actor.source} cannot set a status of {status!r}")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise InvalidChangeError(f"a reason is at most {MAX_REASON} characters")
    if status == "excused" and not reason:
        raise InvalidChangeError("excusing a student needs a reason")
    if actor.source == "person" and not reason:
        raise InvalidChangeError("a person's change of status needs a reason")
    return reason


def decide(current: Current | None, status: str, actor: Actor) -> Literal["mark", "change", "unchanged"]:
    """What to do with a valid request given the row as it stands. Raises ChangeRefusedError.

    - no row: a person or the system makes the mark (recognition makes its own marks, with
      their sightings: services/recorder/store.py);
    - the system decides absences only where nobody has a row;
    - recognition changes only an absence the system decided (a sighting that arrived late, a
      backlog); anything a person set stands;
    - a person may change anything."""
    if current is None:
        if actor.source == "recognition":
            raise ChangeRefusedError("recognition makes its own marks; there is no row to change")
        return "mark"
    if current.status == status:
        return "unchanged"
    if actor.source == "system":
        raise ChangeRefusedError("the system decides absences only for students without a row")
    if actor.source == "recognition" and not (current.set_by == "system" and current.status == "absent"):
        raise ChangeRefusedError(
            f"recognition never overrides a status set by {current.set_by} ({current.status})"
        )
    return "change"


def check_timing(status: str, starts_at: datetime, now: datetime) -> None:
    """Nobody is present or late before the session starts (an absence or an excuse may be
    known ahead). Raises ChangeRefusedError."""
    if status in ("present", "late") and now < starts_at:
        raise ChangeRefusedError("the session has not started: nobody can be present or late yet")


# ---- the database ----


def current_status(connection: Connection, session_id: int, student_id: int, *, lock: bool) -> Current | None:
    """The row of this student in this session as it stands (locked until commit if `lock`)."""
    row = connection.execute(
        sa.text(
            "SELECT a.id, a.mark_event_id, a.status, COALESCE((SELECT c.source FROM attendance_changes c "
            "WHERE c.attendance_id = a.id ORDER BY c.id DESC LIMIT 1), a.source) AS set_by "
            "FROM attendance a WHERE a.session_id = :session AND a.student_id = :student"
            + (" FOR UPDATE" if lock else "")
        ),
        {"session": session_id, "student": student_id},
    ).first()
    if row is None:
        return None
    return Current(int(row.id), row.mark_event_id, row.status, row.set_by)


def set_status(
    connection: Connection,
    session_id: int,
    student_id: int,
    status: str,
    *,
    actor: Actor,
    reason: str = "",
    now: datetime | None = None,
) -> Outcome:
    """Set a student's status in a session, in the caller's transaction (see the module
    docstring). Raises InvalidChangeError (422), NoSuchTargetError (404) or ChangeRefusedError
    (409); a refused change writes nothing."""
    reason = check_request(status, actor, reason)
    now = now or datetime.now(UTC)
    session = connection.execute(
        sa.text("SELECT id, course_id, starts_at FROM class_sessions WHERE id = :id"), {"id": session_id}
    ).first()
    if session is None:
        raise NoSuchTargetError(f"no session {session_id}")
    student = connection.execute(
        sa.text("SELECT id, deleted_at FROM students WHERE id = :id"), {"id": student_id}
    ).first()
    if student is None:
        raise NoSuchTargetError(f"no student {student_id}")
    current = current_status(connection, session_id, student_id, lock=True)
    if current is None:
        _check_new_mark(connection, session, student, actor)
    if actor.source == "person":
        check_timing(status, as_utc(session.starts_at), now)
    action = decide(current, status, actor)
    if action == "mark":
        return _mark(connection, session_id, student_id, status=status, actor=actor, reason=reason)
    assert current is not None
    if action == "unchanged":
        return Outcome("unchanged", current.attendance_id, current.mark_event_id, current.status, status)
    change_event_id = str(uuid.uuid4())
    connection.execute(
        sa.text("UPDATE attendance SET status = :status WHERE id = :id"),
        {"status": status, "id": current.attendance_id},
    )
    result = connection.execute(
        sa.text(
            "INSERT INTO attendance_changes (change_event_id, attendance_id, changed_at, source, actor, "
            "actor_user_id, from_status, to_status, reason) VALUES (:event, :attendance, "
            "CURRENT_TIMESTAMP(6), :source, :actor, :user, :from_status, :to_status, :reason)"
        ),
        {
            "event": change_event_id,
            "attendance": current.attendance_id,
            "source": actor.source,
            "actor": actor.name[:MAX_ACTOR],
            "user": actor.user_id,
            "from_status": current.status,
            "to_status": status,
            "reason": reason,
        },
    )
    return Outcome(
        "changed",
        current.attendance_id,
        current.mark_event_id,
        current.status,
        status,
        int(result.lastrowid),
        change_event_id,
    )


def _check_new_mark(connection: Connection, session: sa.Row, student: sa.Row, actor: Actor) -> None:
    """Only roster students get statuses in a course's session, and only students not deleted."""
    if student.deleted_at is not None:
        raise ChangeRefusedError(f"student {student.id} is deleted")
    if session.course_id is None:
        if actor.source == "system":
            raise ChangeRefusedError("a session without a course has no roster: nobody is absent there")
        return
    on_roster = connection.execute(
        sa.text("SELECT 1 FROM course_students WHERE course_id = :course AND student_id = :student"),
        {"course": session.course_id, "student": student.id},
    ).first()
    if on_roster is None:
        raise ChangeRefusedError(f"student {student.id} is not on the roster of this session's course")


def _mark(
    connection: Connection, session_id: int, student_id: int, *, status: str, actor: Actor, reason: str
) -> Outcome:
    """A person's or the system's mark: no sightings, no distances."""
    event_id = str(uuid.uuid4())
    result = connection.execute(
        sa.text(
            "INSERT INTO attendance (session_id, student_id, status, source, reason, marked_by, "
            "marked_by_user_id, sightings, mark_event_id, marked_at) VALUES (:session, :student, "
            ":status, :source, :reason, :by, :user, 0, :event, CURRENT_TIMESTAMP(6))"
        ),
        {
            "session": session_id,
            "student": student_id,
            "status": status,
            "source": actor.source,
            "reason": reason,
            "by": actor.name[:MAX_ACTOR] if actor.source == "person" else None,
            "user": actor.user_id,
            "event": event_id,
        },
    )
    return Outcome("marked", int(result.lastrowid), event_id, None, status)
