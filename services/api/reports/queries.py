"""The reports' reads from MySQL, assembled into plain records (the arithmetic: `rates`).

Statuses are read as they stand now, with who set them (the latest change's source, else the
mark's) and why, so a report agrees with the corrections history. Reports over many sessions
count only sessions that have started (`starts_at <= now`); a single session's roll is
answered whatever its state.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.api.reports.rates import NOT_SEEN, SessionState, Tally, is_below, session_state, tally
from services.common.attendance import as_utc, to_db
from services.common.sessions import SESSION_COLUMNS, ClassSession, default_session_span, session_from_row
from services.common.timetable import Term


@dataclass(frozen=True)
class CourseRef:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class StudentRef:
    id: int
    student_number: str
    name: str


@dataclass(frozen=True)
class Mark:
    """A student's row in a session, as it stands."""

    session_id: int
    student_id: int
    status: str
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    source: str  # who set the status now: recognition | person | system
    reason: str  # why (the latest change's reason, else the mark's)
    confidence: str | None  # recognition's tier of the mark ("check": thin evidence)


@dataclass(frozen=True)
class RollLine:
    student: StudentRef
    on_roster: bool
    status: str  # one of rates.STATUSES, or not_seen
    mark: Mark | None


@dataclass(frozen=True)
class SessionReport:
    session: ClassSession
    course: CourseRef | None
    state: SessionState
    finalized: bool  # the recorder decided its absences
    lines: list[RollLine]
    tally: Tally  # of the roster (of everyone marked, for a session without a course)


@dataclass(frozen=True)
class SessionColumn:
    session: ClassSession
    state: SessionState
    tally: Tally  # of the roster in this session


@dataclass(frozen=True)
class StudentLine:
    student: StudentRef
    on_roster: bool
    statuses: list[str]  # one per session of the report, in its order
    tally: Tally
    below: bool


@dataclass(frozen=True)
class CourseReport:
    course: CourseRef
    term: Term
    threshold_percent: float
    sessions: list[SessionColumn]
    students: list[StudentLine]
    tally: Tally  # every cell of the roster


@dataclass(frozen=True)
class StudentSessionLine:
    session: ClassSession
    course: CourseRef | None
    state: SessionState
    status: str
    mark: Mark | None


@dataclass(frozen=True)
class CourseTally:
    course: CourseRef | None  # None: sessions without a course (a camera's default session)
    tally: Tally


@dataclass(frozen=True)
class StudentReport:
    student: StudentRef
    first_day: date
    last_day: date
    lines: list[StudentSessionLine]
    courses: list[CourseTally]
    tally: Tally


# ---- lookups ----


def get_course_ref(connection: Connection, course_id: int) -> CourseRef | None:
    row = connection.execute(
        sa.text("SELECT id, code, name FROM courses WHERE id = :id"), {"id": course_id}
    ).first()
    return CourseRef(int(row.id), row.code, row.name) if row else None


def _expanding(query: str, *names: str) -> sa.TextClause:
    return sa.text(query).bindparams(*(sa.bindparam(name, expanding=True) for name in names))


def _students(connection: Connection, ids: Iterable[int]) -> dict[int, StudentRef]:
    """Students by id, erased ones included (their past attendance stays)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = connection.execute(
        _expanding("SELECT id, student_number, name FROM students WHERE id IN :ids", "ids"), {"ids": wanted}
    )
    return {int(r.id): StudentRef(int(r.id), r.student_number, r.name) for r in rows}


def _roster(connection: Connection, course_id: int) -> set[int]:
    rows = connection.execute(
        sa.text("SELECT student_id FROM course_students WHERE course_id = :course"), {"course": course_id}
    )
    return {int(value) for value in rows.scalars()}


def _courses(connection: Connection, ids: Iterable[int]) -> dict[int, CourseRef]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = connection.execute(
        _expanding("SELECT id, code, name FROM courses WHERE id IN :ids", "ids"), {"ids": wanted}
    )
    return {int(r.id): CourseRef(int(r.id), r.code, r.name) for r in rows}


MARKS = """
SELECT a.session_id, a.student_id, a.status, a.first_seen_at, a.last_seen_at, a.confidence,
       COALESCE(lc.source, a.source) AS set_by, COALESCE(lc.reason, a.reason) AS why
FROM attendance a
LEFT JOIN attendance_changes lc ON lc.id = (
  SELECT MAX(c.id) FROM attendance_changes c WHERE c.attendance_id = a.id)
"""


def _marks(connection: Connection, session_ids: Sequence[int], student_id: int | None = None) -> list[Mark]:
    if not session_ids:
        return []
    where = " WHERE a.session_id IN :sessions"
    params: dict[str, object] = {"sessions": sorted(set(session_ids))}
    if student_id is not None:
        where += " AND a.student_id = :student"
        params["student"] = student_id
    rows = connection.execute(_expanding(MARKS + where, "sessions"), params)
    return [
        Mark(
            session_id=int(r.session_id),
            student_id=int(r.student_id),
            status=r.status,
            first_seen_at=as_utc(r.first_seen_at) if r.first_seen_at else None,
            last_seen_at=as_utc(r.last_seen_at) if r.last_seen_at else None,
            source=r.set_by,
            reason=r.why or "",
            confidence=r.confidence,
        )
        for r in rows
    ]


def _by_name(student: StudentRef) -> tuple[str, str, int]:
    return (student.name.casefold(), student.student_number, student.id)


def day_span(first_day: date, last_day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """From the start of the school's first day to the end of its last, in UTC."""
    return default_session_span(first_day, tz)[0], default_session_span(last_day, tz)[1]


# ---- a session ----


def session_report(connection: Connection, session: ClassSession, now: datetime) -> SessionReport:
    """The roll: every roster student with their status (not_seen without a row), then anyone
    else marked (a guest, someone since removed from the roster), each group by name."""
    course = get_course_ref(connection, session.course_id) if session.course_id is not None else None
    roster = _roster(connection, session.course_id) if session.course_id is not None else set()
    marks = {mark.student_id: mark for mark in _marks(connection, [session.id])}
    students = _students(connection, roster | set(marks))
    lines = [
        RollLine(student, student.id in roster, marks[student.id].status if student.id in marks else NOT_SEEN,
                 marks.get(student.id))
        for student in sorted(students.values(), key=_by_name)
    ]  # fmt: skip
    lines.sort(key=lambda line: not line.on_roster)  # stable: by name within each group
    counted = [line.status for line in lines if line.on_roster or course is None]
    finalized = connection.execute(
        sa.text("SELECT finalized_at IS NOT NULL FROM class_sessions WHERE id = :id"), {"id": session.id}
    ).scalar()
    return SessionReport(
        session=session,
        course=course,
        state=session_state(session.starts_at, session.ends_at, now),
        finalized=bool(finalized),
        lines=lines,
        tally=tally(counted),
    )


# ---- a course over a term ----


class TooManySessionsError(ValueError):
    """More sessions than one report shows (a 422: a narrower span is needed)."""


MAX_REPORT_SESSIONS = 1000  # 5 a week for a 40-week year is 200


def course_sessions(
    connection: Connection, course_id: int, first: datetime, last: datetime, now: datetime
) -> list[ClassSession]:
    """The course's sessions starting between `first` and `last` that have started by `now`."""
    rows = connection.execute(
        sa.text(
            f"SELECT {SESSION_COLUMNS} FROM class_sessions WHERE course_id = :course "
            "AND starts_at >= :first AND starts_at < :last AND starts_at <= :now "
            "ORDER BY starts_at, id LIMIT :limit"
        ),
        {
            "course": course_id,
            "first": to_db(first),
            "last": to_db(last),
            "now": to_db(now),
            "limit": MAX_REPORT_SESSIONS + 1,
        },
    )
    found = [session_from_row(row) for row in rows]
    if len(found) > MAX_REPORT_SESSIONS:
        raise TooManySessionsError(f"more than {MAX_REPORT_SESSIONS} sessions: choose a shorter term")
    return found


def course_report(
    connection: Connection,
    course: CourseRef,
    term: Term,
    *,
    tz: ZoneInfo,
    now: datetime,
    threshold_percent: float,
) -> CourseReport:
    """Students (the roster, then anyone else marked in these sessions) by sessions of the term."""
    first, last = day_span(term.first_day, term.last_day, tz)
    sessions = course_sessions(connection, course.id, first, last, now)
    marks = {(m.session_id, m.student_id): m.status for m in _marks(connection, [s.id for s in sessions])}
    roster = _roster(connection, course.id)
    students = sorted(
        _students(connection, roster | {student_id for _, student_id in marks}).values(), key=_by_name
    )
    students.sort(key=lambda student: student.id not in roster)
    lines = []
    for student in students:
        statuses = [marks.get((session.id, student.id), NOT_SEEN) for session in sessions]
        counts = tally(statuses)
        lines.append(
            StudentLine(
                student, student.id in roster, statuses, counts, is_below(counts.rate, threshold_percent)
            )
        )
    # A session's rate, and the course's, are of the roster, as a session's roll counts them.
    rostered = [line for line in lines if line.on_roster]
    columns = [
        SessionColumn(
            session,
            session_state(session.starts_at, session.ends_at, now),
            tally(line.statuses[index] for line in rostered),
        )
        for index, session in enumerate(sessions)
    ]
    return CourseReport(
        course=course,
        term=term,
        threshold_percent=threshold_percent,
        sessions=columns,
        students=lines,
        tally=tally(status for line in rostered for status in line.statuses),
    )


# ---- a student over a range of days ----


def student_sessions(
    connection: Connection,
    student_id: int,
    first: datetime,
    last: datetime,
    *,
    now: datetime,
    courses: set[int] | None,
) -> list[ClassSession]:
    """Started sessions between `first` and `last` of the student's courses, or where they have
    a row (a default session, a course they have left), of these courses only (None: all)."""
    query = (
        f"SELECT {SESSION_COLUMNS} FROM class_sessions cs "
        "WHERE cs.starts_at >= :first AND cs.starts_at < :last AND cs.starts_at <= :now "
        "AND (cs.course_id IN (SELECT course_id FROM course_students WHERE student_id = :student) "
        "OR EXISTS (SELECT 1 FROM attendance a WHERE a.session_id = cs.id AND a.student_id = :student))"
    )
    params: dict[str, object] = {
        "student": student_id,
        "first": to_db(first),
        "last": to_db(last),
        "now": to_db(now),
    }
    if courses is not None:
        if not courses:
            return []
        query += " AND cs.course_id IN :courses"
        params["courses"] = sorted(courses)
    query += " ORDER BY cs.starts_at, cs.id LIMIT :limit"
    params["limit"] = MAX_REPORT_SESSIONS + 1
    statement = _expanding(query, "courses") if courses is not None else sa.text(query)
    found = [session_from_row(row) for row in connection.execute(statement, params)]
    if len(found) > MAX_REPORT_SESSIONS:
        raise TooManySessionsError(f"more than {MAX_REPORT_SESSIONS} sessions: choose a shorter range")
    return found


def student_report(
    connection: Connection,
    student: StudentRef,
    first_day: date,
    last_day: date,
    *,
    tz: ZoneInfo,
    now: datetime,
    courses: set[int] | None = None,
) -> StudentReport:
    first, last = day_span(first_day, last_day, tz)
    sessions = student_sessions(connection, student.id, first, last, now=now, courses=courses)
    marks = {m.session_id: m for m in _marks(connection, [s.id for s in sessions], student.id)}
    refs = _courses(connection, (s.course_id for s in sessions if s.course_id is not None))
    lines = [
        StudentSessionLine(
            session=session,
            course=refs.get(session.course_id) if session.course_id is not None else None,
            state=session_state(session.starts_at, session.ends_at, now),
            status=marks[session.id].status if session.id in marks else NOT_SEEN,
            mark=marks.get(session.id),
        )
        for session in sessions
    ]
    per_course: dict[int | None, list[str]] = {}
    for line in lines:
        per_course.setdefault(line.course.id if line.course else None, []).append(line.status)
    course_tallies = sorted(
        (
            CourseTally(refs.get(key) if key is not None else None, tally(statuses))
            for key, statuses in per_course.items()
        ),
        key=lambda entry: (entry.course is None, entry.course.code if entry.course else ""),
    )
    return StudentReport(
        student=student,
        first_day=first_day,
        last_day=last_day,
        lines=lines,
        courses=course_tallies,
        tally=tally(line.status for line in lines),
    )


def get_student_ref(connection: Connection, student_id: int) -> StudentRef | None:
    """An enrolled (not erased) student."""
    row = connection.execute(
        sa.text("SELECT id, student_number, name FROM students WHERE id = :id AND deleted_at IS NULL"),
        {"id": student_id},
    ).first()
    return StudentRef(int(row.id), row.student_number, row.name) if row else None
