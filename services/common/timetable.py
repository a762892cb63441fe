"""The timetable: terms, holidays and weekly slots, and the class sessions they make
(docs/attendance-record.md, "Timetable"), in one home for the API (which makes them at once
when the timetable changes) and the recorder (which makes them ahead on its tick, so today's
sessions exist without anybody creating them).

A slot's session is an ordinary `class_sessions` row with `slot_id` and `slot_day`, unique
together, so making the same days twice (the API and the recorder at once, or a tick after a
restart) changes nothing. A slot day on which another scheduled session already holds the
camera is skipped, and said so: two sessions on one camera never overlap.
"""

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.attendance import as_utc, to_db
from services.common.sessions import ensure_cameras

logger = logging.getLogger(__name__)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Term:
    id: int
    name: str
    first_day: date
    last_day: date


@dataclass(frozen=True)
class Holiday:
    id: int
    name: str
    first_day: date
    last_day: date

    def covers(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day


@dataclass(frozen=True)
class Slot:
    id: int
    course_id: int
    term_id: int
    camera_id: str
    weekday: int  # 0 = Monday
    starts_time: time
    ends_time: time


@dataclass(frozen=True)
class PlannedSession:
    """A session a slot should have: its day and its span in UTC."""

    slot: Slot
    day: date
    starts_at: datetime
    ends_at: datetime


# ---- the rules, as pure functions ----


def slot_span(day: date, starts: time, ends: time, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """A slot's session on `day`, from local wall-clock times to UTC (a DST change in the
    middle of a lesson is the zone's business: zoneinfo resolves both ends)."""
    start = datetime.combine(day, starts, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day, ends, tzinfo=tz).astimezone(UTC)
    return start, end


def slot_days(slot: Slot, term: Term, holidays: Iterable[Holiday], first: date, last: date) -> list[date]:
    """The days between `first` and `last` (both included) on which the slot meets: its weekday,
    within its term, outside every holiday."""
    start, end = max(first, term.first_day), min(last, term.last_day)
    if start > end:
        return []
    day = start + timedelta(days=(slot.weekday - start.weekday()) % 7)
    closed = list(holidays)
    days = []
    while day <= end:
        if not any(h.covers(day) for h in closed):
            days.append(day)
        day += timedelta(days=7)
    return days


def plan(
    slots: Iterable[Slot],
    terms: dict[int, Term],
    holidays: Sequence[Holiday],
    first: date,
    last: date,
    *,
    tz: ZoneInfo,
) -> list[PlannedSession]:
    """Every session the slots should have between `first` and `last`, by start."""
    planned = [
        PlannedSession(slot, day, *slot_span(day, slot.starts_time, slot.ends_time, tz))
        for slot in slots
        if slot.term_id in terms
        for day in slot_days(slot, terms[slot.term_id], holidays, first, last)
    ]
    return sorted(planned, key=lambda p: (p.starts_at, p.slot.id))


def overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    """Two half-open spans [start, end) share a moment."""
    return a[0] < b[1] and b[0] < a[1]


def slots_clash(a: Slot, b: Slot, a_term: Term, b_term: Term) -> bool:
    """Two slots would hold one camera at once on some day: same camera and weekday,
    overlapping hours, overlapping terms."""
    return (
        a.camera_id == b.camera_id
        and a.weekday == b.weekday
        and a.starts_time < b.ends_time
        and b.starts_time < a.ends_time
        and a_term.first_day <= b_term.last_day
        and b_term.first_day <= a_term.last_day
    )


# ---- MySQL ----

SLOT_COLUMNS = "id, course_id, term_id, camera_id, weekday, starts_time, ends_time"


def _time(value: object) -> time:
    # PyMySQL returns TIME columns as timedelta since midnight.
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        return time(seconds // 3600, seconds % 3600 // 60, seconds % 60)
    assert isinstance(value, time)
    return value


def slot_from_row(row: sa.Row) -> Slot:
    return Slot(
        id=int(row.id),
        course_id=int(row.course_id),
        term_id=int(row.term_id),
        camera_id=row.camera_id,
        weekday=int(row.weekday),
        starts_time=_time(row.starts_time),
        ends_time=_time(row.ends_time),
    )


def list_terms(connection: Connection) -> list[Term]:
    rows = connection.execute(
        sa.text("SELECT id, name, first_day, last_day FROM terms ORDER BY first_day DESC, id")
    )
    return [Term(int(r.id), r.name, r.first_day, r.last_day) for r in rows]


def get_term(connection: Connection, term_id: int) -> Term | None:
    row = connection.execute(
        sa.text("SELECT id, name, first_day, last_day FROM terms WHERE id = :id"), {"id": term_id}
    ).first()
    return Term(int(row.id), row.name, row.first_day, row.last_day) if row else None


def list_holidays(connection: Connection) -> list[Holiday]:
    rows = connection.execute(
        sa.text("SELECT id, name, first_day, last_day FROM holidays ORDER BY first_day, id")
    )
    return [Holiday(int(r.id), r.name, r.first_day, r.last_day) for r in rows]


def list_slots(connection: Connection, course_id: int | None = None) -> list[Slot]:
    where, params = ("WHERE course_id = :course", {"course": course_id}) if course_id else ("", {})
    rows = connection.execute(
        sa.text(f"SELECT {SLOT_COLUMNS} FROM timetable_slots {where} ORDER BY weekday, starts_time, id"),
        params,
    )
    return [slot_from_row(r) for r in rows]


def get_slot(connection: Connection, slot_id: int) -> Slot | None:
    row = connection.execute(
        sa.text(f"SELECT {SLOT_COLUMNS} FROM timetable_slots WHERE id = :id"), {"id": slot_id}
    ).first()
    return slot_from_row(row) if row else None


def create_slot(
    connection: Connection,
    *,
    course_id: int,
    term_id: int,
    camera_id: str,
    weekday: int,
    starts_time: time,
    ends_time: time,
) -> Slot:
    ensure_cameras(connection, {camera_id})
    result = connection.execute(
        sa.text(
            "INSERT INTO timetable_slots (course_id, term_id, camera_id, weekday, starts_time, ends_time) "
            "VALUES (:course, :term, :camera, :weekday, :starts, :ends)"
        ),
        {
            "course": course_id,
            "term": term_id,
            "camera": camera_id,
            "weekday": weekday,
            "starts": starts_time,
            "ends": ends_time,
        },
    )
    slot = get_slot(connection, int(result.lastrowid))
    assert slot is not None
    return slot


def _unused(where: str) -> str:
    """Slot sessions matching `where` that nothing refers to yet (no mark, no review item): a
    holiday or a removed slot may take those away, never attendance. Sightings are not
    consulted (the API may not read them, db_grants): one filed under a removed session
    stays a sighting until the retention purge, counted in no session."""
    return (
        f"SELECT s.id FROM class_sessions s WHERE s.slot_id IS NOT NULL AND {where} "
        "AND NOT EXISTS (SELECT 1 FROM attendance a WHERE a.session_id = s.id) "
        "AND NOT EXISTS (SELECT 1 FROM review_items r WHERE r.session_id = s.id)"
    )


def _delete_sessions(connection: Connection, where: str, params: dict[str, object]) -> int:
    ids = connection.execute(sa.text(_unused(where) + " FOR UPDATE"), params).scalars().all()
    if ids:
        connection.execute(
            sa.text("DELETE FROM class_sessions WHERE id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": list(ids)},
        )
    return len(ids)


def remove_slot(connection: Connection, slot_id: int, now: datetime) -> int:
    """Delete a slot and its sessions that have not started and hold nothing; sessions that
    happened stay (their slot_id becomes NULL). How many sessions were removed."""
    removed = _delete_sessions(
        connection, "s.slot_id = :slot AND s.starts_at > :now", {"slot": slot_id, "now": to_db(now)}
    )
    connection.execute(sa.text("DELETE FROM timetable_slots WHERE id = :id"), {"id": slot_id})
    return removed


def remove_holiday_sessions(connection: Connection, holiday: Holiday) -> int:
    """The slot sessions on a holiday's days that hold nothing yet are removed."""
    return _delete_sessions(
        connection,
        "s.slot_day BETWEEN :first AND :last",
        {"first": holiday.first_day, "last": holiday.last_day},
    )


def make_sessions(
    connection: Connection, first: date, last: date, tz: ZoneInfo, course_id: int | None = None
) -> int:
    """Create the slot sessions between `first` and `last` that do not exist yet (of one
    course, or all). Idempotent. How many were created."""
    slots = list_slots(connection, course_id)
    if not slots:
        return 0
    terms = {t.id: t for t in list_terms(connection)}
    planned = plan(slots, terms, list_holidays(connection), first, last, tz=tz)
    if not planned:
        return 0
    start = min(p.starts_at for p in planned)
    end = max(p.ends_at for p in planned)
    rows = connection.execute(
        sa.text(
            "SELECT id, camera_id, starts_at, ends_at, slot_id, slot_day FROM class_sessions "
            "WHERE default_day IS NULL AND starts_at < :end AND ends_at > :start"
        ),
        {"start": to_db(start), "end": to_db(end)},
    ).all()
    made = {(int(r.slot_id), r.slot_day) for r in rows if r.slot_id is not None}
    held: dict[str, list[tuple[datetime, datetime]]] = {}
    for r in rows:
        held.setdefault(r.camera_id, []).append((as_utc(r.starts_at), as_utc(r.ends_at)))
    names = {int(r.id): r.name for r in connection.execute(sa.text("SELECT id, name FROM courses"))}
    created = 0
    for p in planned:
        if (p.slot.id, p.day) in made:
            continue
        span = (p.starts_at, p.ends_at)
        if any(overlaps(span, other) for other in held.get(p.slot.camera_id, [])):
            logger.warning(
                "slot %d: no session on %s, camera %s already has a session then",
                p.slot.id,
                p.day,
                p.slot.camera_id,
            )
            continue
        result = connection.execute(
            sa.text(
                "INSERT IGNORE INTO class_sessions "
                "(name, camera_id, course_id, starts_at, ends_at, slot_id, slot_day) "
                "VALUES (:name, :camera, :course, :start, :end, :slot, :day)"
            ),
            {
                "name": names.get(p.slot.course_id, f"course {p.slot.course_id}"),
                "camera": p.slot.camera_id,
                "course": p.slot.course_id,
                "start": to_db(p.starts_at),
                "end": to_db(p.ends_at),
                "slot": p.slot.id,
                "day": p.day,
            },
        )
        created += result.rowcount
        held.setdefault(p.slot.camera_id, []).append(span)
    return created


def days_ahead(now: datetime, tz: ZoneInfo, ahead: int) -> tuple[date, date]:
    """Today (the school's) and `ahead` days after it: the window sessions are made for."""
    today = now.astimezone(tz).date()
    return today, today + timedelta(days=ahead)
