"""Bodies of the roster import routes."""

from typing import Literal

from pydantic import BaseModel, Field

from services.api.schemas import ErrorOut, FieldError, ResponseBody, UtcDateTime

JobState = Literal["checking", "ready", "applying", "applied", "failed", "discarded"]


class ImportPhotoOut(BaseModel):
    name: str = Field(description="The ZIP member")
    state: Literal["pending", "accepted", "refused", "not_checked"] = Field(
        description="pending: not checked yet; refused: the row's reason says why; not_checked: the "
        "row is refused for another reason, so its photo was never read"
    )
    face_px: int | None = Field(None, description="Size of the face found (shorter side, pixels)")


class ImportRowOut(BaseModel):
    line: int = Field(description="The line in the CSV (the header is line 1)")
    student_number: str
    name: str
    course_codes: list[str]
    verdict: Literal["create", "update", "unchanged", "refuse"] = Field(
        description="What applying does with the row: a new student, a change of an existing one, "
        "nothing, or nothing because of `reason`"
    )
    reason: str = Field(description="Why the row is refused (empty otherwise)")
    changes: list[str] = Field(description="What applying it changes: name, courses +CODE, photo, consent")
    student_id: int | None = Field(description="The existing student (an update), or the one created")
    photo: ImportPhotoOut | None
    outcome: Literal["created", "updated", "unchanged", "refused"] | None = Field(
        description="What applying did (null until the row is applied)"
    )
    outcome_reason: str = Field(description="Why applying refused a row the preview accepted")


class VerdictCounts(BaseModel):
    create: int
    update: int
    unchanged: int
    refuse: int


class OutcomeCounts(BaseModel):
    created: int
    updated: int
    unchanged: int
    refused: int


class ImportJobOut(ResponseBody):
    id: int
    state: JobState = Field(
        description="checking: photos are being analysed (the preview is not complete); ready: the "
        "preview is complete, POST .../apply writes it; applying; applied; failed: see error "
        "(a failed apply continues where it stopped when applied again); discarded"
    )
    created_by: str
    created_at: UtcDateTime
    updated_at: UtcDateTime
    csv_filename: str
    zip_filename: str | None
    delimiter: str = Field(description="The CSV's delimiter as detected")
    processed: int = Field(description="Progress of the phase running: photos checked, or rows applied")
    total: int = Field(description="Photos to check (checking), or rows to apply (applying)")
    error: str
    ignored_columns: list[str] = Field(description="Columns of the CSV the import does not read")
    unmatched_files: list[str] = Field(description="ZIP members that are not the photo of any row (not read)")
    verdicts: VerdictCounts
    outcomes: OutcomeCounts
    applied_by: str | None
    applied_at: UtcDateTime | None
    finished_at: UtcDateTime | None
    rows: list[ImportRowOut] | None = Field(
        None, description="Every row, in file order (left out when asked with rows=false)"
    )


class ImportRefusedOut(ErrorOut):
    """422 of an upload: the file's problem in `detail`, or the request does not fit the schema
    (a file missing: then `errors` too)."""

    errors: list[FieldError] | None = None
