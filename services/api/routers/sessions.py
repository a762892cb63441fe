"""Class sessions: scheduled ones, and each camera's default session of the day."""

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, Admin, CurrentUser
from services.api.accounts.scope import check_session, visible_sessions
from services.api.context import Context
from services.api.errors import ApiError, not_found
from services.api.queries.courses import get_course
from services.api.queries.sessions import create_session, overlapping_session
from services.api.schemas import DayQuery, ErrorOut, SessionIn, SessionOut
from services.common.sessions import current_sessions, get_session, local_day, sessions_of_day
from services.common.settings import CAMERA_ID_PATTERN

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/sessions", tags=["sessions"], responses=AUTH_RESPONSES)

CameraQuery = Annotated[str | None, Query(pattern=CAMERA_ID_PATTERN, description="Only this camera")]


@router.get(
    "", response_model=list[SessionOut], summary="The sessions of a day, by start time (a teacher's own)"
)
def sessions(
    principal: CurrentUser, context: Context, date: DayQuery = None, camera_id: CameraQuery = None
) -> list[SessionOut]:
    tz = context.settings.tz
    with context.engine.connect() as connection:
        found = sessions_of_day(connection, date or local_day(datetime.now(UTC), tz), tz, camera_id)
        found = visible_sessions(connection, principal, found)
    return [SessionOut.model_validate(session) for session in found]


# Declared before /{session_id}, which would otherwise claim "current" and refuse it as a number.
@router.get(
    "/current",
    response_model=list[SessionOut],
    summary="For each camera, the session running now (scheduled, else today's default)",
)
def running_sessions(principal: CurrentUser, context: Context) -> list[SessionOut]:
    with context.engine.connect() as connection:
        found = current_sessions(connection, datetime.now(UTC), context.settings.tz)
        found = visible_sessions(connection, principal, found)
    return [SessionOut.model_validate(session) for session in found]


@router.post(
    "",
    status_code=201,
    response_model=SessionOut,
    summary="Schedule a session (an unknown camera is created)",
    responses={
        409: {"model": ErrorOut, "description": "Another scheduled session holds the camera then"},
        422: {"model": ErrorOut, "description": "ends_at not after starts_at, or unknown course"},
    },
)
def add_session(body: SessionIn, admin: Admin, context: Context) -> SessionOut:
    if body.ends_at <= body.starts_at:
        raise ApiError(
            422,
            f"ends_at ({body.ends_at.isoformat()}) must be after starts_at ({body.starts_at.isoformat()})",
        )
    with context.engine.begin() as connection:
        if body.course_id is not None and get_course(connection, body.course_id) is None:
            raise ApiError(422, f"course {body.course_id} does not exist")
        clash = overlapping_session(connection, body.camera_id, body.starts_at, body.ends_at)
        if clash is not None:
            raise ApiError(
                409,
                f"camera {body.camera_id} already has session {clash.id} ({clash.name}) "
                f"from {clash.starts_at.isoformat()} to {clash.ends_at.isoformat()}",
            )
        session = create_session(
            connection,
            name=body.name,
            camera_id=body.camera_id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            course_id=body.course_id,
        )
        audit.record(
            connection,
            admin,
            "session.create",
            "session",
            session.id,
            detail=f"on camera {session.camera_id}",
        )
    logger.info("session %d (%s) scheduled on camera %s", session.id, session.name, session.camera_id)
    return SessionOut.model_validate(session)


@router.get(
    "/{session_id}",
    response_model=SessionOut,
    summary="One session",
    responses={404: {"model": ErrorOut, "description": "No such session"}},
)
def read_session(session_id: int, principal: CurrentUser, context: Context) -> SessionOut:
    with context.engine.connect() as connection:
        session = get_session(connection, session_id)
        if session is None:
            raise not_found("session", session_id)
        check_session(connection, principal, session)
    return SessionOut.model_validate(session)
