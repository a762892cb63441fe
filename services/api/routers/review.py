"""The review queue (docs/attendance-record.md, "Review queue"): faces the system would not name,
or named on thin evidence, kept as crops grouped by track, for the session's teacher to decide.

Reading is for everyone who may see the session (a viewer too); acting is for the session's
teacher and admins. Actions, each audited and each on an open item only:
- assign ("this is <student>"): the student is marked (present, unless said late) with source
  `person` through services.common.corrections; on a session with a course, only a student on
  its roster. On a `check` item whose mark named somebody else, that mark becomes absent. With
  `enroll`, the best crop that passes the usual checks becomes an enrollment photo, through the
  students' own photo-adding path.
- dismiss ("not a student"): nothing is marked; a `check` item's mark stays as it is.
- undo ("not this person"), on a `check` item whose track made a mark: the mark becomes absent
  through a correction with a reason.
A crop is served as image/jpeg, never inside JSON.
"""

import logging
from datetime import UTC, datetime
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, CurrentUser, require
from services.api.accounts.scope import check_session
from services.api.accounts.tokens import Principal
from services.api.context import ApiContext, Context
from services.api.errors import ApiError, not_found
from services.api.gallery_broadcast import BROADCAST_HEADER, UNCHANGED
from services.api.queries import review as queries
from services.api.routers.students import enroll_photo_bytes, no_consent
from services.api.schemas import (
    ErrorOut,
    PhotoUploadOut,
    RequestBody,
    ResponseBody,
    Responses,
    RowId,
    UtcDateTime,
)
from services.common import corrections
from services.common.corrections import Actor
from services.common.sessions import ClassSession, get_session
from services.common.students import get_student

logger = logging.getLogger(__name__)

router = APIRouter(tags=["review"], responses=AUTH_RESPONSES)

# The session's teacher (check_session narrows a teacher to their courses) or an admin.
Reviewer = Annotated[Principal, Depends(require("admin", "teacher"))]

State = Literal["open", "assigned", "dismissed", "undone"]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=corrections.MAX_REASON)]
ItemId = RowId

ITEM_NOT_FOUND: Responses = {
    404: {"model": ErrorOut, "description": "No such review item (or its session is gone)"}
}
SESSION_NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such session"}}
CONFLICT: Responses = {
    409: {
        "model": ErrorOut,
        "description": "The item is already resolved, or the action does not apply to it (a student "
        "not on the session's roster, or deleted; undo of an item that made no mark)",
    }
}


class CandidateOut(ResponseBody):
    id: int
    student_number: str
    name: str


class CropOut(ResponseBody):
    id: int = Field(description="GET /review/crops/{id} serves its JPEG")
    captured_at: UtcDateTime
    distance: float | None = Field(description="To the closest enrolled student, in this look")


class ReviewItemOut(ResponseBody):
    id: int
    track_id: str
    kind: Literal["unknown", "check"] = Field(
        description="unknown: named nobody; check: named `candidate` on thin evidence"
    )
    camera_id: str
    session_id: int | None
    candidate: CandidateOut | None = Field(description="The closest student (a hint, never a name by itself)")
    best_distance: float | None
    first_seen_at: UtcDateTime
    last_seen_at: UtcDateTime
    state: State
    resolved_at: UtcDateTime | None
    resolved_by: str | None
    resolved_student_id: int | None
    attendance_id: int | None = Field(description="The mark the item made (check) or became (assigned)")
    crops: list[CropOut] = Field(description="Best first")


class ReviewCountsOut(BaseModel):
    open: int
    assigned: int
    dismissed: int
    undone: int


class ReviewPageOut(BaseModel):
    session_id: int
    counts: ReviewCountsOut
    items: list[ReviewItemOut]
    total: int = Field(description="Items matching the state filter")
    page: int
    page_size: int


class ReviewCountOut(BaseModel):
    session_id: int
    open: int = Field(description="Items waiting for a person")


class AssignIn(RequestBody):
    student_id: ItemId
    status: Literal["present", "late"] = "present"
    enroll: bool = Field(
        False, description="Also add the best crop that passes the checks as an enrollment photo"
    )
    reason: Reason = ""


class ReasonIn(RequestBody):
    reason: Reason = ""


class MarkChangeOut(BaseModel):
    attendance_id: int
    student_id: int
    action: Literal["marked", "changed", "unchanged"]
    from_status: str | None
    to_status: str


class ReviewActionOut(BaseModel):
    item: ReviewItemOut
    marks: list[MarkChangeOut] = Field(description="What the action did to attendance, in order")
    enrollment: PhotoUploadOut | None = Field(None, description="With enroll: what became of the crops")


def _session_of(connection: Connection, principal: Principal, session_id: int | None) -> ClassSession:
    session = get_session(connection, session_id) if session_id is not None else None
    if session is None:
        raise ApiError(404, "the session of this review item does not exist")
    check_session(connection, principal, session)
    return session


@router.get(
    "/sessions/{session_id}/review",
    response_model=ReviewPageOut,
    summary="A session's review queue: faces to decide, grouped by track, with counts by state",
    responses=SESSION_NOT_FOUND,
)
def session_review(
    session_id: ItemId,
    principal: CurrentUser,
    context: Context,
    *,
    state: Annotated[State | Literal["all"], Query(description="Only items in this state")] = "open",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ReviewPageOut:
    with context.engine.connect() as connection:
        session = get_session(connection, session_id)
        if session is None:
            raise not_found("session", session_id)
        check_session(connection, principal, session)
        items, total = queries.session_items(
            connection, session_id, None if state == "all" else state, page, page_size
        )
        counts = queries.counts(connection, session_id)
    return ReviewPageOut(
        session_id=session_id,
        counts=ReviewCountsOut(**counts),
        items=[ReviewItemOut.model_validate(item) for item in items],
        total=total,
        page=page,
        page_size=page_size,
    )


@router.get(
    "/sessions/{session_id}/review/count",
    response_model=ReviewCountOut,
    summary="How many review items of a session wait (for the live page to poll)",
    responses=SESSION_NOT_FOUND,
)
def session_review_count(session_id: ItemId, principal: CurrentUser, context: Context) -> ReviewCountOut:
    with context.engine.connect() as connection:
        session = get_session(connection, session_id)
        if session is None:
            raise not_found("session", session_id)
        check_session(connection, principal, session)
        counts = queries.counts(connection, session_id)
    return ReviewCountOut(session_id=session_id, open=counts["open"])


@router.get(
    "/review/crops/{crop_id}",
    response_class=Response,
    summary="A face crop of a review item, as JPEG",
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The crop (biometric data: not cached)"},
        404: {"model": ErrorOut, "description": "No such crop (or purged)"},
    },
)
def review_crop(crop_id: ItemId, principal: CurrentUser, context: Context) -> Response:
    with context.engine.connect() as connection:
        found = queries.crop_of(connection, crop_id)
        if found is None:
            raise not_found("crop", crop_id)
        session_id, jpeg = found
        _session_of(connection, principal, session_id)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})


@router.get(
    "/review/items/{item_id}",
    response_model=ReviewItemOut,
    summary="One review item",
    responses=ITEM_NOT_FOUND,
)
def review_item(item_id: ItemId, principal: CurrentUser, context: Context) -> ReviewItemOut:
    with context.engine.connect() as connection:
        item = queries.get_item(connection, item_id)
        if item is None:
            raise not_found("review item", item_id)
        _session_of(connection, principal, item.session_id)
    return ReviewItemOut.model_validate(item)


def _open_item(
    connection: Connection, principal: Principal, item_id: int
) -> tuple[queries.ReviewItem, ClassSession]:
    """The item, locked until commit, if it is open and the principal may act on its session."""
    item = queries.get_item(connection, item_id, lock=True)
    if item is None:
        raise not_found("review item", item_id)
    session = _session_of(connection, principal, item.session_id)
    if item.state != "open":
        raise ApiError(409, f"review item {item_id} is already {item.state}")
    return item, session


def _person(principal: Principal) -> Actor:
    return Actor("person", principal.actor, principal.user_id)


def _set(
    connection: Connection,
    session_id: int,
    student_id: int,
    status: str,
    *,
    principal: Principal,
    reason: str,
) -> MarkChangeOut:
    try:
        outcome = corrections.set_status(
            connection,
            session_id,
            student_id,
            status,
            actor=_person(principal),
            reason=reason,
            now=datetime.now(UTC),
        )
    except corrections.InvalidChangeError as error:
        raise ApiError(422, str(error)) from error
    except (corrections.NoSuchTargetError, corrections.ChangeRefusedError) as error:
        raise ApiError(409, str(error)) from error
    return MarkChangeOut(
        attendance_id=outcome.attendance_id,
        student_id=student_id,
        action=outcome.action,
        from_status=outcome.from_status,
        to_status=outcome.to_status,
    )


def _marked_student(connection: Connection, attendance_id: int) -> int | None:
    value = connection.execute(
        sa.text("SELECT student_id FROM attendance WHERE id = :id"), {"id": attendance_id}
    ).scalar()
    return None if value is None else int(value)


def _assign(
    context: ApiContext, principal: Principal, item_id: int, body: AssignIn
) -> tuple[ReviewActionOut, list[bytes]]:
    with context.engine.begin() as connection:
        item, session = _open_item(connection, principal, item_id)
        student = get_student(connection, body.student_id)
        if student is None:
            raise ApiError(422, f"student {body.student_id} does not exist")
        if not _on_roster(connection, session, body.student_id):
            raise ApiError(409, f"student {body.student_id} is not on the roster of this session's course")
        if body.enroll and student.consent_at is None:
            # Refused before anything is marked, so the item stays open for an answer without enrollment.
            raise no_consent(body.student_id)
        reason = body.reason or "review queue: identified from the face crops"
        marks = []
        wrong = _marked_student(connection, item.attendance_id) if item.attendance_id else None
        if item.kind == "check" and wrong is not None and wrong != body.student_id:
            # The system named somebody else on this face: that mark was not theirs.
            not_them = f"review queue: not this person ({reason})"
            marks.append(_set(connection, session.id, wrong, "absent", principal=principal, reason=not_them))
        marks.append(
            _set(connection, session.id, body.student_id, body.status, principal=principal, reason=reason)
        )
        queries.resolve(
            connection,
            item_id,
            "assigned",
            by=principal.actor,
            student_id=body.student_id,
            attendance_id=marks[-1].attendance_id,
        )
        audit.record(
            connection,
            principal,
            "review.assign",
            "review_item",
            item_id,
            detail=f"student {body.student_id} in session {session.id}: {marks[-1].action}",
        )
        resolved = queries.get_item(connection, item_id)
        crops = queries.crop_jpegs(connection, item_id) if body.enroll else []
    assert resolved is not None
    logger.info("review item %d assigned to student %d", item_id, body.student_id)
    return ReviewActionOut(item=ReviewItemOut.model_validate(resolved), marks=marks), crops


def _on_roster(connection: Connection, session: ClassSession, student_id: int) -> bool:
    if session.course_id is None:
        return True
    found = connection.execute(
        sa.text("SELECT 1 FROM course_students WHERE course_id = :course AND student_id = :student"),
        {"course": session.course_id, "student": student_id},
    ).first()
    return found is not None


@router.post(
    "/review/items/{item_id}/assign",
    response_model=ReviewActionOut,
    summary='"This is <student>": mark them, optionally enrolling the best crop',
    responses={
        **ITEM_NOT_FOUND,
        409: {
            "model": ErrorOut,
            "description": CONFLICT[409]["description"] + "; enroll for a student without recorded "
            "consent (nothing is marked then), or no crop left to enroll",
        },
        200: {"description": "Assigned", "headers": {BROADCAST_HEADER: {"schema": {"type": "string"}}}},
        422: {"model": ErrorOut, "description": "A body that does not fit, or a student that does not exist"},
    },
)
async def assign(item_id: ItemId, body: AssignIn, principal: Reviewer, context: Context) -> JSONResponse:
    result, crops = await run_in_threadpool(_assign, context, principal, item_id, body)
    broadcast = UNCHANGED
    if body.enroll:
        if not crops:
            raise ApiError(409, f"review item {item_id} has no face crop left to enroll")
        photos = [(f"review-{item_id}-crop-{n}.jpg", jpeg) for n, jpeg in enumerate(crops, start=1)]
        enrollment, broadcast = await enroll_photo_bytes(context, principal, body.student_id, photos)
        result = result.model_copy(update={"enrollment": enrollment})
    return JSONResponse(result.model_dump(mode="json"), headers={BROADCAST_HEADER: broadcast})


def _close(
    context: ApiContext, principal: Principal, item_id: int, action: str, body: ReasonIn
) -> ReviewActionOut:
    with context.engine.begin() as connection:
        item, session = _open_item(connection, principal, item_id)
        marks = []
        if action == "undo":
            student = _marked_student(connection, item.attendance_id) if item.attendance_id else None
            if item.kind != "check" or student is None:
                raise ApiError(409, f"review item {item_id} made no mark to undo")
            reason = body.reason or "review queue: not this person"
            marks.append(_set(connection, session.id, student, "absent", principal=principal, reason=reason))
        state = "undone" if action == "undo" else "dismissed"
        queries.resolve(connection, item_id, state, by=principal.actor)
        audit.record(
            connection,
            principal,
            f"review.{action}",
            "review_item",
            item_id,
            detail=f"session {session.id}" + (f": {body.reason}" if body.reason else ""),
        )
        resolved = queries.get_item(connection, item_id)
    assert resolved is not None
    logger.info("review item %d %s", item_id, state)
    return ReviewActionOut(item=ReviewItemOut.model_validate(resolved), marks=marks)


@router.post(
    "/review/items/{item_id}/dismiss",
    response_model=ReviewActionOut,
    summary='"Not a student": close the item without marking anyone',
    responses={**ITEM_NOT_FOUND, **CONFLICT},
)
def dismiss(
    item_id: ItemId, principal: Reviewer, context: Context, body: ReasonIn | None = None
) -> ReviewActionOut:
    return _close(context, principal, item_id, "dismiss", body or ReasonIn())


@router.post(
    "/review/items/{item_id}/undo",
    response_model=ReviewActionOut,
    summary='"Not this person": the mark this face made becomes absent (a correction)',
    responses={**ITEM_NOT_FOUND, **CONFLICT},
)
def undo(
    item_id: ItemId, principal: Reviewer, context: Context, body: ReasonIn | None = None
) -> ReviewActionOut:
    return _close(context, principal, item_id, "undo", body or ReasonIn())
