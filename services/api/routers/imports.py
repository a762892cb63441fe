"""Roster imports (admins): a CSV of students and a ZIP of their photos, previewed row by row
before anything is written, then applied, both in the background with progress to poll."""

import functools
import logging
import shutil
import tempfile
from typing import IO, Annotated

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, Admin
from services.api.accounts.tokens import Principal
from services.api.context import ApiContext, Context
from services.api.errors import ApiError, not_found
from services.api.imports import roster, store
from services.api.imports.archive import ArchiveError, ArchiveLimits, PhotoArchive, inspect
from services.api.imports.schemas import ImportJobOut, ImportPhotoOut, ImportRefusedOut, ImportRowOut
from services.api.limits import MB
from services.api.schemas import ErrorOut, Responses

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/imports", tags=["imports"], responses=AUTH_RESPONSES)

NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such import"}}
# The ZIP is copied here while it is inspected and its photos checked (deleted after).
SPOOL_BYTES = 1 * MB


def job_out(job: store.Job, rows: list[store.JobRow] | None) -> ImportJobOut:
    return ImportJobOut(
        id=job.id,
        state=job.state,
        created_by=job.created_by,
        created_at=job.created_at,
        updated_at=job.updated_at,
        csv_filename=job.csv_filename,
        zip_filename=job.zip_filename,
        delimiter=job.delimiter,
        processed=job.processed,
        total=job.total,
        error=job.error,
        ignored_columns=list(job.notes.get("ignored_columns", [])),
        unmatched_files=list(job.notes.get("unmatched_files", [])),
        verdicts=job.verdicts,
        outcomes=job.outcomes,
        applied_by=job.applied_by,
        applied_at=job.applied_at,
        finished_at=job.finished_at,
        rows=None if rows is None else [_row_out(row) for row in rows],
    )


def _row_out(row: store.JobRow) -> ImportRowOut:
    photo = None
    if row.photo_name is not None:
        photo = ImportPhotoOut(
            name=row.photo_name, state=row.photo_state or "not_checked", face_px=row.face_px
        )
    return ImportRowOut(
        line=row.line,
        student_number=row.student_number,
        name=row.name,
        course_codes=row.course_codes,
        verdict=row.verdict,
        reason=row.reason,
        changes=row.changes,
        student_id=row.student_id,
        photo=photo,
        outcome=row.outcome,
        outcome_reason=row.outcome_reason,
    )


def _read_job(connection: Connection, job_id: int, with_rows: bool) -> ImportJobOut:
    job = store.get_job(connection, job_id)
    if job is None:
        raise not_found("import", job_id)
    return job_out(job, store.job_rows(connection, job_id) if with_rows else None)


@router.post(
    "",
    status_code=202,
    response_model=ImportJobOut,
    summary="Upload a roster: its preview is made, nothing is written to the school's data",
    description="`roster`: a CSV (UTF-8, with or without a byte-order mark; `,`, `;` or tab "
    "between cells) whose first line names the columns `student_number`, `name` and optionally "
    "`courses` (codes of existing courses, separated by spaces). `photos`: optionally a ZIP of "
    "photos named by student number (`S001.jpg`, `.jpeg` or `.png`; folders ignored). Every row "
    "gets a verdict (create, update, unchanged, refuse with its reason); every photo goes "
    "through the enrollment checks in the background: poll GET /imports/{id} until the state "
    "is `ready`, then POST /imports/{id}/apply. A ZIP makes a photo required for every student "
    "who would have none. Limits: API_IMPORT_MAX_CSV_BYTES, API_IMPORT_MAX_ROWS (lines, and "
    "files in the ZIP), API_IMPORT_MAX_UNZIPPED_MB, API_MAX_PHOTO_BYTES a photo, "
    "API_IMPORT_MAX_REQUEST_BYTES the request.",
    responses={
        202: {"description": "The import job with its rows; state `checking` while photos are analysed"},
        422: {
            "model": ImportRefusedOut,
            "description": "The CSV cannot be read as a roster (not UTF-8, malformed, no header, no "
            "rows, too many rows, too large), the photos file is not a ZIP or is too large (a ZIP "
            "bomb), or the request does not fit the schema (then with errors)",
        },
    },
)
async def create_import(
    roster_file: Annotated[
        UploadFile, File(alias="roster", description="The CSV: student_number, name, courses (optional)")
    ],
    admin: Admin,
    context: Context,
    photos: Annotated[
        UploadFile | None, File(description="Optional ZIP of photos named by student number")
    ] = None,
) -> JSONResponse:
    settings = context.settings
    data = await roster_file.read(settings.api_import_max_csv_bytes + 1)
    if len(data) > settings.api_import_max_csv_bytes:
        raise ApiError(
            422,
            f"the CSV is larger than {settings.api_import_max_csv_bytes / MB:.1f} MB "
            "(API_IMPORT_MAX_CSV_BYTES): split it",
        )
    try:
        parsed = roster.parse(data, settings.api_import_max_rows)
    except roster.RosterFileError as error:
        raise ApiError(422, str(error)) from error
    archive_file: IO[bytes] | None = None
    archive: PhotoArchive | None = None
    zip_name = None
    if photos is not None and (photos.filename or photos.size):  # a form's empty file field: none
        zip_name = photos.filename or "photos.zip"
        archive_file, archive = await run_in_threadpool(_spool_and_inspect, context, photos.file)
    try:
        job_id, pending = await run_in_threadpool(
            functools.partial(
                _preview,
                context,
                admin,
                csv_name=roster_file.filename or "roster.csv",
                zip_name=zip_name,
                parsed=parsed,
                archive=archive,
            )
        )
    except BaseException:
        if archive_file is not None:
            archive_file.close()
        raise
    if archive_file is not None:
        if pending:
            context.imports.check(job_id, archive_file)
        else:
            archive_file.close()
    logger.info("roster import %d: %d row(s), %d photo(s) to check", job_id, len(parsed.rows), pending)
    body = await run_in_threadpool(_read, context, job_id)
    return JSONResponse(body.model_dump(mode="json"), status_code=202)


def _read(context: ApiContext, job_id: int) -> ImportJobOut:
    with context.engine.connect() as connection:
        return _read_job(connection, job_id, with_rows=True)


def _spool_and_inspect(context: ApiContext, upload: IO[bytes]) -> tuple[IO[bytes], PhotoArchive]:
    """The ZIP copied to a file of our own (the upload's is gone with the request), and what it holds."""
    settings = context.settings
    copy = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - closed by its job
    try:
        shutil.copyfileobj(upload, copy)
        copy.seek(0)
        limits = ArchiveLimits(
            max_members=settings.api_import_max_rows,
            max_member_bytes=settings.api_max_photo_bytes,
            max_total_bytes=settings.api_import_max_unzipped_mb * MB,
        )
        return copy, inspect(copy, limits)
    except ArchiveError as error:
        copy.close()
        raise ApiError(422, str(error)) from error
    except BaseException:
        copy.close()
        raise


def _preview(
    context: ApiContext,
    admin: Principal,
    *,
    csv_name: str,
    zip_name: str | None,
    parsed: roster.RosterFile,
    archive: PhotoArchive | None,
) -> tuple[int, int]:
    """The job and its verdicts, stored; (its id, photos to check)."""
    with context.engine.begin() as connection:
        store.expire_old(connection)
        decisions = roster.decide(
            parsed.rows, store.existing(connection), archive.by_number if archive else None
        )
        unmatched: list[str] = []
        if archive is not None:
            numbers = {d.row.student_number.casefold() for d in decisions}
            unmatched = sorted(
                [
                    name
                    for number, names in archive.by_number.items()
                    if number not in numbers
                    for name in names
                ]
                + archive.others
            )
        notes = {"ignored_columns": parsed.ignored_columns, "unmatched_files": unmatched[:1000]}
        job_id = store.create_job(
            connection,
            admin,
            csv_filename=csv_name,
            zip_filename=zip_name,
            delimiter=parsed.delimiter,
            decisions=decisions,
            notes=notes,
        )
        pending = sum(1 for d in decisions if d.photo_name and d.verdict != "refuse")
    return job_id, pending


@router.get("", response_model=list[ImportJobOut], summary="The latest imports, newest first (without rows)")
def list_imports(
    admin: Admin, context: Context, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> list[ImportJobOut]:
    with context.engine.begin() as connection:
        store.mark_stale(connection)
        store.expire_old(connection)  # staged photos are not kept for a preview nobody applies
        return [job_out(job, None) for job in store.recent_jobs(connection, limit)]


@router.get(
    "/{import_id}",
    response_model=ImportJobOut,
    summary="An import: its state, progress, and every row's verdict and outcome",
    responses=NOT_FOUND,
)
def read_import(
    import_id: int,
    admin: Admin,
    context: Context,
    rows: Annotated[bool, Query(description="false: the job and counts only, to poll progress")] = True,
) -> ImportJobOut:
    with context.engine.begin() as connection:
        if not context.imports.running(import_id):
            store.mark_stale(connection, import_id)
        return _read_job(connection, import_id, rows)


@router.post(
    "/{import_id}/apply",
    status_code=202,
    response_model=ImportJobOut,
    summary="Write a ready preview: students created and updated, course rosters, photos enrolled",
    description="Runs in the background (state `applying`, progress in rows); each row is "
    "written in its own transaction with its audit entries, and records its outcome. A row "
    "whose preview no longer holds (its number was taken, its student or a course deleted "
    "meanwhile) is refused with the reason. A failed apply continues with the rows left when "
    "applied again. Refused rows are never written; courses are only added to, never removed from.",
    responses={
        **NOT_FOUND,
        202: {"description": "Applying started: the job, without rows"},
        409: {"model": ErrorOut, "description": "The import is not ready (still checking, applied, ...)"},
    },
)
async def apply_import(import_id: int, admin: Admin, context: Context) -> JSONResponse:
    body = await run_in_threadpool(_start_apply, context, admin, import_id)
    context.imports.apply(import_id, admin)
    return JSONResponse(body.model_dump(mode="json"), status_code=202)


def _start_apply(context: ApiContext, admin: Principal, import_id: int) -> ImportJobOut:
    with context.engine.begin() as connection:
        if not context.imports.running(import_id):
            store.mark_stale(connection, import_id)
        job = store.lock_job(connection, import_id)
        if job is None:
            raise not_found("import", import_id)
        resumable = job.state == "failed" and job.applied_at is not None
        if job.state != "ready" and not resumable:
            raise ApiError(409, _not_ready(job))
        left = store.start_apply(connection, import_id, admin)
        audit.record(
            connection, admin, "import.apply", "roster_import", import_id, detail=f"{left} row(s) to apply"
        )
        return _read_job(connection, import_id, with_rows=False)


def _not_ready(job: store.Job) -> str:
    if job.state == "checking":
        return f"import {job.id} is still checking its photos ({job.processed} of {job.total})"
    if job.state == "failed":
        return f"import {job.id} failed before its preview was complete ({job.error}): import the file again"
    return f"import {job.id} is {job.state}: it cannot be applied"


@router.delete(
    "/{import_id}",
    status_code=204,
    response_class=Response,
    summary="Discard an import that was not applied: its staged photos are erased",
    responses={
        **NOT_FOUND,
        204: {"description": "Discarded"},
        409: {"model": ErrorOut, "description": "The import is running or was applied"},
    },
)
def discard_import(import_id: int, admin: Admin, context: Context) -> Response:
    with context.engine.begin() as connection:
        if not context.imports.running(import_id):
            store.mark_stale(connection, import_id)
        job = store.lock_job(connection, import_id)
        if job is None:
            raise not_found("import", import_id)
        if job.state in (*store.RUNNING, "applied") or job.applied_at is not None:
            raise ApiError(
                409, f"import {import_id} is {job.state}: only an import never applied is discarded"
            )
        if job.state != "discarded":
            store.erase_staged_photos(connection, import_id)
            store.set_state(connection, import_id, "discarded", finished=True)
            audit.record(connection, admin, "import.discard", "roster_import", import_id)
    return Response(status_code=204)
