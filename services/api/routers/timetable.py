"""The timetable: terms, holidays and each course's weekly slots (services/common/timetable.py).

Every change makes the sessions it implies at once, for today and TIMETABLE_DAYS_AHEAD days
(the recorder keeps that window filled as days pass), so a teacher who adds a slot for today
sees today's session. Slots are added and removed, not edited: a session that happened keeps
its times. Reading is for everybody signed in (a teacher: their own courses' slots); changing
is for admins.
"""

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from fastapi import APIRouter, Response
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, Admin, CurrentUser
from services.api.accounts.scope import may_see_course
from services.api.context import ApiContext, Context
from services.api.errors import ApiError, not_found
from services.api.queries.courses import get_course
from services.api.schemas import DaySpanIn, ErrorOut, HolidayOut, Responses, SlotIn, SlotOut, TermOut
from services.common import timetable
from services.common.timetable import WEEKDAYS, Holiday, Term

logger = logging.getLogger(__name__)

router = APIRouter(tags=["timetable"], responses=AUTH_RESPONSES)

# A term or a holiday longer than a school year is a mistyped year (2062 for 2026), not a plan.
MAX_SPAN_DAYS = 366
SPAN_ERROR: Responses = {
    422: {"model": ErrorOut, "description": f"last_day before first_day, or more than {MAX_SPAN_DAYS} days"}
}


def _check_span(body: DaySpanIn) -> None:
    if body.last_day < body.first_day:
        raise ApiError(422, f"last_day ({body.last_day}) is before first_day ({body.first_day})")
    days = (body.last_day - body.first_day).days + 1
    if days > MAX_SPAN_DAYS:
        raise ApiError(
            422,
            f"{body.first_day} to {body.last_day} is {days} days; a term or holiday lasts at most "
            f"{MAX_SPAN_DAYS} (is a year mistyped?)",
        )


def _make_ahead(connection: Connection, context: ApiContext, course_id: int | None = None) -> int:
    first, last = timetable.days_ahead(
        datetime.now(UTC), context.settings.tz, context.settings.timetable_days_ahead
    )
    return timetable.make_sessions(connection, first, last, context.settings.tz, course_id)


# ---- terms ----


@router.get("/terms", response_model=list[TermOut], summary="Every term, the latest first")
def terms(_principal: CurrentUser, context: Context) -> list[TermOut]:
    with context.engine.connect() as connection:
        return [TermOut.model_validate(term) for term in timetable.list_terms(connection)]


@router.post(
    "/terms",
    status_code=201,
    response_model=TermOut,
    summary="Add a term",
    responses={**SPAN_ERROR, 409: {"model": ErrorOut, "description": "Another term has this name"}},
)
def add_term(body: DaySpanIn, admin: Admin, context: Context) -> TermOut:
    _check_span(body)
    try:
        with context.engine.begin() as connection:
            result = connection.execute(
                sa.text("INSERT INTO terms (name, first_day, last_day) VALUES (:name, :first, :last)"),
                {"name": body.name, "first": body.first_day, "last": body.last_day},
            )
            term = Term(int(result.lastrowid), body.name, body.first_day, body.last_day)
            audit.record(connection, admin, "term.create", "term", term.id, detail=term.name)
    except IntegrityError as error:
        raise ApiError(409, f"a term named {body.name!r} exists already") from error
    return TermOut.model_validate(term)


# ---- holidays ----


@router.get("/holidays", response_model=list[HolidayOut], summary="Every holiday, by first day")
def holidays(_principal: CurrentUser, context: Context) -> list[HolidayOut]:
    with context.engine.connect() as connection:
        return [HolidayOut.model_validate(h) for h in timetable.list_holidays(connection)]


@router.post(
    "/holidays",
    status_code=201,
    response_model=HolidayOut,
    summary="Add a holiday: the slot sessions on its days that hold no attendance are removed",
    responses=SPAN_ERROR,
)
def add_holiday(body: DaySpanIn, admin: Admin, context: Context) -> HolidayOut:
    _check_span(body)
    with context.engine.begin() as connection:
        result = connection.execute(
            sa.text("INSERT INTO holidays (name, first_day, last_day) VALUES (:name, :first, :last)"),
            {"name": body.name, "first": body.first_day, "last": body.last_day},
        )
        holiday = Holiday(int(result.lastrowid), body.name, body.first_day, body.last_day)
        removed = timetable.remove_holiday_sessions(connection, holiday)
        audit.record(
            connection,
            admin,
            "holiday.create",
            "holiday",
            holiday.id,
            detail=f"{holiday.name}: {holiday.first_day} to {holiday.last_day}, {removed} session(s) removed",
        )
    logger.info("holiday %d (%s): %d slot session(s) removed", holiday.id, holiday.name, removed)
    return HolidayOut.model_validate(holiday)


@router.delete(
    "/holidays/{holiday_id}",
    status_code=204,
    summary="Remove a holiday: its days' slot sessions are made again",
    responses={404: {"model": ErrorOut, "description": "No such holiday"}},
)
def remove_holiday(holiday_id: int, admin: Admin, context: Context) -> Response:
    with context.engine.begin() as connection:
        deleted = connection.execute(sa.text("DELETE FROM holidays WHERE id = :id"), {"id": holiday_id})
        if not deleted.rowcount:
            raise not_found("holiday", holiday_id)
        made = _make_ahead(connection, context)
        audit.record(
            connection, admin, "holiday.delete", "holiday", holiday_id, detail=f"{made} session(s) made"
        )
    return Response(status_code=204)


# ---- a course's slots ----

COURSE_NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such course (or not yours)"}}


def _visible_course(connection: Connection, principal: CurrentUser, course_id: int) -> None:
    # A teacher is told "not found" of another's course, as of its sessions.
    if get_course(connection, course_id) is None or not may_see_course(connection, principal, course_id):
        raise not_found("course", course_id)


@router.get(
    "/courses/{course_id}/slots",
    response_model=list[SlotOut],
    summary="A course's weekly slots, by weekday and time",
    responses=COURSE_NOT_FOUND,
)
def slots(course_id: int, principal: CurrentUser, context: Context) -> list[SlotOut]:
    with context.engine.connect() as connection:
        _visible_course(connection, principal, course_id)
        return [SlotOut.model_validate(slot) for slot in timetable.list_slots(connection, course_id)]


@router.post(
    "/courses/{course_id}/slots",
    status_code=201,
    response_model=SlotOut,
    summary="Add a weekly slot: the course meets before a camera on a weekday (sessions made at once)",
    responses={
        **COURSE_NOT_FOUND,
        409: {"model": ErrorOut, "description": "Another slot holds the camera then"},
        422: {"model": ErrorOut, "description": "ends_time not after starts_time, or no such term"},
    },
)
def add_slot(course_id: int, body: SlotIn, admin: Admin, context: Context) -> SlotOut:
    if body.ends_time <= body.starts_time:
        raise ApiError(
            422, f"ends_time ({body.ends_time:%H:%M}) must be after starts_time ({body.starts_time:%H:%M})"
        )
    with context.engine.begin() as connection:
        if get_course(connection, course_id) is None:
            raise not_found("course", course_id)
        term = timetable.get_term(connection, body.term_id)
        if term is None:
            raise ApiError(422, f"term {body.term_id} does not exist")
        # Locks the camera's slots, so two admins cannot add clashing slots at once.
        connection.execute(
            sa.text("SELECT id FROM timetable_slots WHERE camera_id = :camera FOR UPDATE"),
            {"camera": body.camera_id},
        )
        new = timetable.Slot(
            0, course_id, term.id, body.camera_id, body.weekday, body.starts_time, body.ends_time
        )
        terms = {t.id: t for t in timetable.list_terms(connection)}
        for other in timetable.list_slots(connection):
            if timetable.slots_clash(new, other, term, terms[other.term_id]):
                raise ApiError(
                    409,
                    f"camera {body.camera_id} is taken on {WEEKDAYS[other.weekday]}s "
                    f"{other.starts_time:%H:%M}-{other.ends_time:%H:%M} by slot {other.id} "
                    f"(course {other.course_id}) in an overlapping term",
                )
        slot = timetable.create_slot(
            connection,
            course_id=course_id,
            term_id=term.id,
            camera_id=body.camera_id,
            weekday=body.weekday,
            starts_time=body.starts_time,
            ends_time=body.ends_time,
        )
        made = _make_ahead(connection, context, course_id)
        audit.record(
            connection,
            admin,
            "slot.create",
            "course",
            course_id,
            detail=f"slot {slot.id}: {WEEKDAYS[slot.weekday]} {slot.starts_time:%H:%M}-"
            f"{slot.ends_time:%H:%M} on camera {slot.camera_id}, {made} session(s) made",
        )
    logger.info("course %d: slot %d added, %d session(s) made", course_id, slot.id, made)
    return SlotOut.model_validate(slot)


@router.delete(
    "/courses/{course_id}/slots/{slot_id}",
    status_code=204,
    summary="Remove a slot: its sessions still to come that hold nothing go; past ones stay",
    responses={404: {"model": ErrorOut, "description": "No such course or slot"}},
)
def remove_slot(course_id: int, slot_id: int, admin: Admin, context: Context) -> Response:
    with context.engine.begin() as connection:
        slot = timetable.get_slot(connection, slot_id)
        if slot is None or slot.course_id != course_id:
            raise not_found("slot", slot_id)
        removed = timetable.remove_slot(connection, slot_id, datetime.now(UTC))
        audit.record(
            connection,
            admin,
            "slot.delete",
            "course",
            course_id,
            detail=f"slot {slot_id}, {removed} session(s) removed",
        )
    return Response(status_code=204)
