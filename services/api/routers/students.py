"""Students: create, search, edit, erase, and enroll their photos."""

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, Admin, CurrentUser, require
from services.api.accounts.scope import check_student, course_scope
from services.api.accounts.tokens import Principal
from services.api.context import ApiContext, Context
from services.api.errors import ApiError, not_found
from services.api.gallery_broadcast import BROADCAST_HEADER, UNCHANGED
from services.api.photos import OUT_OF_TIME, AcceptedPhoto, RejectedPhoto, store_photos
from services.api.queries.students import lock_active_student, search_students, update_student
from services.api.schemas import (
    ConsentIn,
    ConsentOut,
    ErasedOut,
    ErasureOut,
    ErrorOut,
    PhotoAccepted,
    PhotoRefusedOut,
    PhotoRejected,
    PhotoUploadOut,
    Responses,
    StudentIn,
    StudentOut,
    StudentPage,
    StudentPatch,
)
from services.common.students import (
    Consent,
    ConsentMissingError,
    Erased,
    create_student,
    erase_student,
    find_student_by_number,
    get_student,
    give_consent,
    withdraw_consent,
)

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/students", tags=["students"], responses=AUTH_RESPONSES)

# Enrollment and edits: an admin, or a teacher of a course the student is on.
Editor = Annotated[Principal, Depends(require("admin", "teacher"))]

NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such student"}}
CONFLICT: Responses = {409: {"model": ErrorOut, "description": "Another student has this number"}}
NO_CONSENT: Responses = {
    409: {"model": ErrorOut, "description": "The student has no recorded consent: nothing was enrolled"}
}
# What withdrawing consent leaves in place, told in every answer so nobody has to guess.
KEPT = (
    "kept: the student, their course rosters, their attendance and its CSV journal, and review "
    "items without their crops; sightings naming them go with the retention purge"
)
ERASURE_KEPT = (
    "kept: the student's name and number on their past attendance and its CSV journal (the school's "
    "record of who was there), marked deleted; review items without their crops; sightings naming them "
    "go with the retention purge (RECORDER_SIGHTINGS_RETENTION_DAYS)"
)
# Told in a header, so a client knows whether the recognizers reload now or at their reconnect.
BROADCAST_DOC: dict[str, Any] = {
    BROADCAST_HEADER: {
        "description": "sent: the recognizers were told to reload; failed: RabbitMQ was unavailable "
        "(the change is saved; they reload when they reconnect); unchanged: no face was added",
        "schema": {"type": "string", "enum": ["sent", "failed", "unchanged"]},
    }
}


def _taken(student_number: str) -> ApiError:
    return ApiError(409, f"student number {student_number} is already taken by another student")


@router.post(
    "",
    status_code=201,
    response_model=StudentOut,
    summary="Add a student",
    responses={**CONFLICT, 422: {"model": ErrorOut}},
)
def add_student(body: StudentIn, admin: Admin, context: Context) -> StudentOut:
    try:
        with context.engine.begin() as connection:
            if find_student_by_number(connection, body.student_number) is not None:
                raise _taken(body.student_number)
            consent = Consent(admin.actor, body.consent_note) if body.consent else None
            student = create_student(connection, body.student_number, body.name, consent)
            audit.record(connection, admin, "student.create", "student", student.id)
            if consent is not None:
                audit.record(connection, admin, "student.consent", "student", student.id, detail="given")
    except IntegrityError as error:  # a concurrent insert won the race
        raise _taken(body.student_number) from error
    logger.info("student %d created", student.id)
    return StudentOut.model_validate(student)


@router.get("", response_model=StudentPage, summary="List or search students, by name")
def list_students(
    principal: CurrentUser,
    context: Context,
    query: Annotated[str, Query(max_length=200, description="Part of a name or number, any case")] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> StudentPage:
    """A teacher sees the students on their courses' rosters only."""
    with context.engine.connect() as connection:
        scope = course_scope(connection, principal)
        students, total = search_students(connection, query.strip(), page, page_size, scope)
    return StudentPage(
        items=[StudentOut.model_validate(s) for s in students], total=total, page=page, page_size=page_size
    )


@router.get("/{student_id}", response_model=StudentOut, summary="One student", responses=NOT_FOUND)
def read_student(student_id: int, principal: CurrentUser, context: Context) -> StudentOut:
    with context.engine.connect() as connection:
        student = get_student(connection, student_id)
        if student is None:
            raise not_found("student", student_id)
        check_student(connection, principal, student_id)
    return StudentOut.model_validate(student)


@router.patch(
    "/{student_id}",
    response_model=StudentOut,
    summary="Change a student's number or name",
    responses={**NOT_FOUND, **CONFLICT},
)
def edit_student(student_id: int, body: StudentPatch, editor: Editor, context: Context) -> StudentOut:
    try:
        with context.engine.begin() as connection:
            if get_student(connection, student_id) is None:
                raise not_found("student", student_id)
            check_student(connection, editor, student_id)
            student = update_student(connection, student_id, body.student_number, body.name)
            changed = ", ".join(sorted(body.model_dump(exclude_none=True))) or "nothing"
            audit.record(connection, editor, "student.change", "student", student_id, detail=changed)
    except IntegrityError as error:
        raise _taken(body.student_number or "") from error
    if student is None:
        raise not_found("student", student_id)
    return StudentOut.model_validate(student)


@router.put(
    "/{student_id}/consent",
    response_model=ConsentOut,
    summary="Record or withdraw a student's consent to biometric processing",
    description="given: true records consent now (who: the caller), so photos may be enrolled; "
    "again changes nothing. given: false withdraws it: the student's enrollment photos, face "
    "encodings and review-queue crops are erased at once and the recognizers told to reload "
    "(also for photos enrolled before consent was recorded); the answer says what was erased and "
    "what was kept.",
    responses={**NOT_FOUND, 200: {"description": "Recorded or withdrawn", "headers": BROADCAST_DOC}},
)
def set_consent(student_id: int, body: ConsentIn, editor: Editor, context: Context) -> JSONResponse:
    erased = Erased(photos=0, review_crops=0)
    with context.engine.begin() as connection:
        if get_student(connection, student_id) is None:
            raise not_found("student", student_id)
        check_student(connection, editor, student_id)
        if body.given:
            changed = give_consent(connection, student_id, Consent(editor.actor, body.note))
            detail = "given"
        else:
            had_consent, erased = withdraw_consent(connection, student_id)
            changed = had_consent or bool(erased.photos or erased.review_crops)
            detail = f"withdrawn: {erased.photos} photo(s) and {erased.review_crops} review crop(s) erased"
        if changed:
            audit.record(connection, editor, "student.consent", "student", student_id, detail=detail)
        student = get_student(connection, student_id)
    assert student is not None
    broadcast = UNCHANGED
    if erased.photos:
        logger.info("student %d: consent withdrawn, %d photo(s) erased", student_id, erased.photos)
        broadcast = context.gallery.announce(f"student {student_id} withdrew consent", student_id)
    action = "unchanged" if not changed else "given" if body.given else "withdrawn"
    out = ConsentOut(
        student=StudentOut.model_validate(student),
        action=action,
        erased=ErasedOut(photos=erased.photos, review_crops=erased.review_crops),
        kept=KEPT,
    )
    return JSONResponse(out.model_dump(mode="json"), headers={BROADCAST_HEADER: broadcast})


@router.delete(
    "/{student_id}",
    response_model=ErasureOut,
    summary="Delete a student: their photos, face encodings and face crops are erased",
    description="The answer says what was erased and what is kept, and why: past attendance keeps the "
    "student's name and number (the school's record). The recognizers are told to reload their gallery.",
    responses={**NOT_FOUND, 200: {"description": "Erased", "headers": BROADCAST_DOC}},
)
def delete_student(student_id: int, admin: Admin, context: Context) -> JSONResponse:
    with context.engine.begin() as connection:
        erased = erase_student(connection, student_id)
        if erased is None:
            raise not_found("student", student_id)
        audit.record(
            connection,
            admin,
            "student.erase",
            "student",
            student_id,
            detail=f"{erased.photos} photo(s) with their encodings and {erased.review_crops} crop(s) erased",
        )
    logger.info("student %d deleted, biometric data erased", student_id)
    broadcast = context.gallery.announce(f"student {student_id} deleted", student_id)
    out = ErasureOut(
        student_id=student_id,
        erased=ErasedOut(photos=erased.photos, review_crops=erased.review_crops),
        kept=ERASURE_KEPT,
    )
    return JSONResponse(out.model_dump(mode="json"), headers={BROADCAST_HEADER: broadcast})


@router.post(
    "/{student_id}/photos",
    status_code=201,
    response_model=PhotoUploadOut,
    summary="Enroll photos of a student (each must show exactly one face)",
    description="Only for a student with recorded consent (409 otherwise, before any photo is "
    "read). Every photo is checked with the recognizers' own detector and encoder. Accepted "
    "photos are kept even when others are refused; the answer is then 422 with the reasons. At "
    "most API_MAX_PHOTOS_PER_REQUEST photos per request, and a request spends at most "
    "API_ENROLL_TIME_BUDGET_S seconds on them: photos whose analysis has not started by then are "
    f'refused with the reason "{OUT_OF_TIME}", the photos analysed before are kept.',
    responses={
        **NOT_FOUND,
        **NO_CONSENT,
        201: {"description": "Every photo accepted", "headers": BROADCAST_DOC},
        413: {"model": ErrorOut, "description": "The request is larger than API_MAX_REQUEST_BYTES"},
        422: {
            "model": PhotoRefusedOut,
            "description": "At least one photo refused (also when the time budget ran out): detail, "
            "accepted, rejected, photo_count; or more photos than API_MAX_PHOTOS_PER_REQUEST, none "
            "analysed: detail only; or the request does not fit the schema: detail, errors",
        },
    },
)
async def upload_photos(
    student_id: int,
    photos: Annotated[
        list[UploadFile], File(description="One or more photos (JPEG, PNG, ...)", min_length=1)
    ],
    editor: Editor,
    context: Context,
) -> JSONResponse:
    deadline = time.monotonic() + context.settings.api_enroll_time_budget_s
    # Database and broker calls block: they run on the thread pool, as in the plain `def` routes.
    await run_in_threadpool(_check_enrollable, context, editor, student_id)
    limit = context.settings.api_max_photos_per_request
    if len(photos) > limit:  # refused before any is analysed
        raise ApiError(
            422,
            f"{len(photos)} photos in one request; at most {limit} (API_MAX_PHOTOS_PER_REQUEST) are "
            "accepted: send them in several requests",
        )
    results = [
        await context.photos.check(upload.filename or f"photo {number}", upload, deadline)
        for number, upload in enumerate(photos, start=1)
    ]
    body, broadcast = await _enroll_checked(context, editor, student_id, results)
    rejected = body.rejected
    headers = {BROADCAST_HEADER: broadcast}
    if rejected:
        first = rejected[0]
        raise ApiError(422, f"{first.filename}: {first.reason}", body.model_dump(mode="json"), headers)
    return JSONResponse(body.model_dump(mode="json"), status_code=201, headers=headers)


async def enroll_photo_bytes(
    context: ApiContext, editor: Principal, student_id: int, photos: list[tuple[str, bytes]]
) -> tuple[PhotoUploadOut, str]:
    """The photo-adding path for photos already in hand (a review-queue crop): the same checks,
    storage, audit entry and broadcast as an upload, trying the photos in order and stopping at
    the first accepted; (the outcome, the broadcast header's value)."""
    deadline = time.monotonic() + context.settings.api_enroll_time_budget_s
    await run_in_threadpool(_check_enrollable, context, editor, student_id)
    results: list[AcceptedPhoto | RejectedPhoto] = []
    for filename, data in photos:
        results.append(await context.photos.check_bytes(filename, data, deadline))
        if isinstance(results[-1], AcceptedPhoto):
            break
    return await _enroll_checked(context, editor, student_id, results)


async def _enroll_checked(
    context: ApiContext, editor: Principal, student_id: int, results: list[AcceptedPhoto | RejectedPhoto]
) -> tuple[PhotoUploadOut, str]:
    """Store the accepted photos and tell the recognizers; the outcome and the broadcast."""
    accepted = [r for r in results if isinstance(r, AcceptedPhoto)]
    rejected = [r for r in results if isinstance(r, RejectedPhoto)]
    stored, photo_count = await run_in_threadpool(_store, context, editor, student_id, accepted)
    broadcast = UNCHANGED
    if stored:
        logger.info("student %d: %d photo(s) enrolled", student_id, stored)
        reason = f"{stored} photo(s) enrolled for student {student_id}"
        broadcast = await run_in_threadpool(context.gallery.announce, reason, student_id)
    body = PhotoUploadOut(
        student_id=student_id,
        accepted=[PhotoAccepted(filename=r.filename, face_px=r.photo.face_px) for r in accepted],
        rejected=[PhotoRejected(filename=r.filename, reason=r.reason) for r in rejected],
        photo_count=photo_count,
    )
    return body, broadcast


def no_consent(student_id: int) -> ApiError:
    return ApiError(
        409,
        f"student {student_id} has no recorded consent to biometric processing, so no photo is "
        f"enrolled: record it first (PUT /students/{student_id}/consent)",
    )


def _check_enrollable(context: ApiContext, editor: Principal, student_id: int) -> None:
    with context.engine.connect() as connection:
        student = get_student(connection, student_id)
        if student is None:
            raise not_found("student", student_id)
        check_student(connection, editor, student_id)
    # Checked before any photo is analysed; _store checks again under the row's lock.
    if student.consent_at is None:
        raise no_consent(student_id)


def _store(
    context: ApiContext, editor: Principal, student_id: int, accepted: list[AcceptedPhoto]
) -> tuple[int, int]:
    """Store the accepted photos; (how many were new, the student's photo count)."""
    with context.engine.begin() as connection:
        if not lock_active_student(connection, student_id):
            raise not_found("student", student_id)  # deleted while its photos were analysed
        try:
            stored = store_photos(connection, editor, student_id, [result.photo for result in accepted])
        except ConsentMissingError as error:  # withdrawn while its photos were analysed
            raise no_consent(student_id) from error
        student = get_student(connection, student_id)
    assert student is not None
    return stored, student.photo_count
