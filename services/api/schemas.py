"""Request and response bodies (pydantic). Responses list their fields explicitly, so nothing
stored beside them (such as a face encoding) can ever reach a client."""

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
    WithJsonSchema,
)

from services.api.accounts.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from services.api.accounts.users import USERNAME_PATTERN, Role
from services.common.corrections import MAX_REASON
from services.common.messages import AttendanceStatus, MarkFields, StatusSource
from services.common.settings import CAMERA_ID_PATTERN
from services.common.students import MAX_CONSENT_NOTE


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# Stored times are UTC; they leave as ISO 8601 with an explicit +00:00 offset.
UtcDateTime = Annotated[datetime, PlainSerializer(_iso_utc, return_type=str, when_used="json")]
StudentNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
CourseCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
CameraId = Annotated[str, Field(pattern=CAMERA_ID_PATTERN)]


def _iso_day(value: object) -> object:
    # Pydantic would also take a number of seconds since 1970 ("0", or 0 in a JSON body); a day
    # is written YYYY-MM-DD.
    if (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)) or isinstance(value, date):
        return value
    raise ValueError("a day is written YYYY-MM-DD")


# Not strict (see RequestBody): a day arrives as text, in a query or a JSON body alike.
Day = Annotated[date, Strict(False), BeforeValidator(_iso_day)]


def _iso_text(value: object) -> object:
    # Pydantic would also take a number of seconds since 1970; a moment is written in ISO 8601.
    if isinstance(value, int | float):
        raise ValueError("a moment is written in ISO 8601, e.g. 2024-09-02T08:00:00+02:00")
    return value


# An aware moment written in ISO 8601 with its offset.
Moment = Annotated[AwareDatetime, Strict(False), BeforeValidator(_iso_text)]
DayQuery = Annotated[
    Day | None, Query(description="A day in the school's time zone, YYYY-MM-DD (default: today)")
]


def _whole_number(value: object) -> object:
    # JSON Schema's integer includes 7.0 (a client's JSON library may write one), so the strict
    # int of a body (see RequestBody) takes it as 7; "7" and true stay refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer in a request body.
WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
# The id of something stored (BIGINT).
RowId = Annotated[WholeNumber, Field(ge=1, le=2**63 - 1)]


# FastAPI's `responses=` documentation of extra status codes.
Responses = dict[int | str, dict[str, Any]]


class RequestBody(BaseModel):
    # A misspelt field is an error, not silently ignored. Strict: a JSON body says what it means,
    # so `"consent": 0` or `"yes"` is not read as a boolean, nor `"7"` or `7.0` as an id (found
    # by schemathesis). Days, moments and times of day are text in JSON: their types opt out.
    model_config = ConfigDict(extra="forbid", strict=True)


class ResponseBody(BaseModel):
    """Built from a stored record with `Model.model_validate(record)`: only the fields listed
    here are read from it, so nothing stored beside them can reach a client."""

    model_config = ConfigDict(from_attributes=True)


class ErrorOut(BaseModel):
    detail: str = Field(description="One sentence saying what went wrong")


class FieldError(BaseModel):
    type: str
    loc: list[str | int]
    msg: str


class ValidationErrorOut(ErrorOut):
    """Every 422 for a request that does not fit its schema."""

    errors: list[FieldError] = Field(description="Each problem: where (loc), what (msg), its type")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    broker: str


# Students


ConsentNote = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_CONSENT_NOTE)]


class StudentIn(RequestBody):
    student_number: StudentNumber
    name: PersonName
    consent: bool = Field(
        False,
        description="Consent to biometric processing is recorded now, by whoever makes the request; "
        "without it no photo can be enrolled (PUT /students/{id}/consent records it later)",
    )
    consent_note: ConsentNote = Field("", description="e.g. where the consent is (a signed form)")


class StudentPatch(RequestBody):
    student_number: StudentNumber | None = None
    name: PersonName | None = None


class StudentOut(ResponseBody):
    id: int
    student_number: str
    name: str
    photo_count: int = Field(description="Enrollment photos (each with one face) on file")
    created_at: UtcDateTime
    consent_at: UtcDateTime | None = Field(
        description="When consent to biometric processing was recorded; null: none, and no photo "
        "can be enrolled (photos enrolled before consent was recorded may remain: photo_count)"
    )
    consent_by: str | None = Field(description="Who recorded it, as the audit log names them")
    consent_note: str


class ConsentIn(RequestBody):
    given: bool = Field(description="true: record consent; false: withdraw it (erases photos and encodings)")
    note: ConsentNote = Field("", description="With given: where the consent is (e.g. a signed form)")


class ErasedOut(BaseModel):
    photos: int = Field(description="Enrollment photos erased, each with its face encoding")
    review_crops: int = Field(description="Review-queue face crops of the student erased")


class ErasureOut(BaseModel):
    student_id: int
    erased: ErasedOut
    kept: str = Field(description="What is kept, and why")


class ConsentOut(BaseModel):
    student: StudentOut
    action: Literal["given", "withdrawn", "unchanged"] = Field(
        description="unchanged: consent was already recorded (the first record stands), or there "
        "was none to withdraw and nothing to erase"
    )
    erased: ErasedOut
    kept: str = Field(description="What a withdrawal keeps, in a sentence")


class StudentPage(BaseModel):
    items: list[StudentOut]
    total: int
    page: int
    page_size: int


class PhotoAccepted(BaseModel):
    filename: str
    face_px: int = Field(description="Size of the face found (shorter side, pixels)")


class PhotoRejected(BaseModel):
    filename: str
    reason: str


class PhotoUploadOut(BaseModel):
    student_id: int
    accepted: list[PhotoAccepted]
    rejected: list[PhotoRejected]
    photo_count: int


class PhotoRefusedOut(ErrorOut):
    """422 of an upload: some photo refused (what was kept and why the rest was not), or the
    request does not fit the schema (errors)."""

    student_id: int | None = None
    accepted: list[PhotoAccepted] | None = None
    rejected: list[PhotoRejected] | None = None
    photo_count: int | None = None
    errors: list[FieldError] | None = None


# Cameras, courses, sessions


class CameraOut(ResponseBody):
    id: str
    name: str
    source: str | None
    last_frame_at: UtcDateTime | None


class CourseIn(RequestBody):
    code: CourseCode
    name: PersonName


class RosterIn(RequestBody):
    student_ids: list[RowId] = Field(max_length=10_000)


class CourseOut(ResponseBody):
    id: int
    code: str
    name: str
    student_ids: list[int]
    teacher_ids: list[int] = Field(description="The users who teach it (see PUT /courses/{id}/teachers)")
    late_after_min: int | None = Field(
        None,
        description="Minutes after a session's start from which a first sighting is late (null: the school's "
        "RECORDER_LATE_AFTER_MIN)",
    )


class LateAfterIn(RequestBody):
    minutes: Annotated[int, Field(ge=0, le=600)] | None = Field(
        description="The course's grace in minutes; null: the school's default (RECORDER_LATE_AFTER_MIN)"
    )


class TeachersIn(RequestBody):
    user_ids: list[RowId] = Field(max_length=1000)


class SessionIn(RequestBody):
    name: PersonName
    camera_id: CameraId
    starts_at: Moment = Field(description="ISO 8601 with an offset, e.g. 2024-09-02T08:00:00+02:00")
    ends_at: Moment
    course_id: RowId | None = None


class SessionOut(ResponseBody):
    id: int
    name: str
    camera_id: str
    course_id: int | None
    starts_at: UtcDateTime
    ends_at: UtcDateTime
    is_default: bool = Field(description="The camera's whole-day session, used when none is scheduled")


# Timetable (services/common/timetable.py)


CLOCK_TIME_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$"


def _clock_time(value: object) -> object:
    # Pydantic would also take a number of seconds since midnight; a time is written HH:MM.
    if isinstance(value, time) or (isinstance(value, str) and re.fullmatch(CLOCK_TIME_PATTERN, value)):
        return value
    raise ValueError("a time of day is written HH:MM, e.g. 08:30")


ClockTime = Annotated[
    time,
    Strict(False),
    BeforeValidator(_clock_time),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str, when_used="json"),
    # Documented as what it takes: pydantic's `format: time` is RFC 3339's, with an offset
    # ("08:30:00Z"), which a local time of day has not (found by schemathesis).
    WithJsonSchema(
        {"type": "string", "pattern": CLOCK_TIME_PATTERN, "examples": ["08:30"]}, mode="validation"
    ),
]


class DaySpanIn(RequestBody):
    name: PersonName
    first_day: Day
    last_day: Day = Field(description="Included; the same as first_day for one day")


class TermOut(ResponseBody):
    id: int
    name: str
    first_day: date
    last_day: date


class HolidayOut(ResponseBody):
    id: int
    name: str
    first_day: date
    last_day: date


class SlotIn(RequestBody):
    term_id: RowId
    camera_id: CameraId
    weekday: WholeNumber = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    starts_time: ClockTime = Field(description="The school's local time (TIMEZONE), HH:MM")
    ends_time: ClockTime


class SlotOut(ResponseBody):
    id: int
    course_id: int
    term_id: int
    camera_id: str
    weekday: int = Field(description="0 = Monday ... 6 = Sunday")
    starts_time: ClockTime
    ends_time: ClockTime


# Attendance


class RollEntryOut(ResponseBody):
    student_id: int
    student_number: str
    student_name: str
    status: AttendanceStatus | Literal["not_seen"] = Field(
        description="not_seen: no mark (yet); absent is decided once the session has ended"
    )
    first_seen_at: UtcDateTime | None
    last_seen_at: UtcDateTime | None
    distance: float | None
    expected: bool = Field(description="On the session's roster (false: marked, but not expected)")
    confidence: Literal["confident", "check"] | None = Field(
        None, description='A recognition mark: "check" when named on thin evidence, for a person to confirm'
    )
    attendance_id: int | None = Field(None, description="The mark's id (None: no mark)")
    source: StatusSource | None = Field(None, description="Who set the status now")
    reason: str = Field("", description="Why (a person's change, an excuse)")


class SessionAttendanceOut(ResponseBody):
    session: SessionOut
    expected: int
    present: int = Field(description="Expected students marked present or late")
    late: int = Field(0, description="Of them, late")
    absent: int = Field(0, description="Expected students absent")
    excused: int = Field(0, description="Expected students excused")
    finalized: bool = Field(False, description="The session ended and its absences were decided")
    students: list[RollEntryOut]


class MarkOut(ResponseBody, MarkFields):
    """A mark: the fields every view of a mark shows (MarkFields), and its sightings so far."""

    first_seen_at: UtcDateTime | None  # the same field, serialised with +00:00 like every API time
    last_seen_at: UtcDateTime | None
    sightings: int
    confidence: Literal["confident", "check"] | None = Field(
        None, description='"check": named on thin evidence, for a person to confirm'
    )
    event_id: str = Field(description="The mark's row in the CSV (its `event_id`)")
    source: StatusSource = Field(description="Who made the mark")
    set_by: StatusSource = Field(validation_alias="current_source", description="Who set the status now")
    reason: str = Field(validation_alias="current_reason", description="Why the status is what it is")


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON)]


class StatusIn(RequestBody):
    status: AttendanceStatus
    reason: Reason = Field(description="Why: every change a person makes needs one (an excuse too)")


class HistoryEntryOut(ResponseBody):
    """A row of the attendance journal (the CSV's rows): a mark made, or a change of its status."""

    kind: Literal["mark", "change"]
    event_id: str = Field(description="The row's event_id in the CSV")
    at: UtcDateTime
    attendance_id: int
    session_id: int
    student_id: int
    student_number: str
    student_name: str
    source: StatusSource
    actor: str = Field(description="Who: a person as the audit log names them, or recognition, or system")
    from_status: AttendanceStatus | None = Field(description="None for a mark")
    to_status: AttendanceStatus
    reason: str
    corrects: str | None = Field(description="A change: the event_id of the mark it changes")


class StatusChangeOut(BaseModel):
    action: Literal["marked", "changed", "unchanged"] = Field(
        description="marked: a new mark; changed: a change row; unchanged: the status already was that"
    )
    attendance_id: int
    from_status: AttendanceStatus | None
    to_status: AttendanceStatus
    change_id: int | None


class RowHistoryOut(BaseModel):
    """A student's row in a session: the mark (None if there is none) and its history."""

    mark: MarkOut | None
    history: list[HistoryEntryOut]


# Accounts, tokens, audit (docs/auth-contract.md)

RoleName = Role
Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN)]
Password = Annotated[str, StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]


class LoginIn(RequestBody):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class UserOut(ResponseBody):
    id: int
    username: str
    display_name: str
    role: RoleName
    disabled: bool
    created_at: UtcDateTime


class LoginOut(BaseModel):
    token: str = Field(description="The session token: send it as `Authorization: Bearer <token>`")
    expires_at: UtcDateTime
    user: UserOut


class UserIn(RequestBody):
    username: Username
    display_name: PersonName
    role: RoleName
    password: Password


class UserPatch(RequestBody):
    display_name: PersonName | None = None
    role: RoleName | None = None
    password: Password | None = None
    disabled: bool | None = None


class TokenIn(RequestBody):
    name: PersonName = Field(description="What the token is for, e.g. 'nightly export'")
    role: Literal["admin", "viewer"] = Field(
        description="An API token is an admin or a viewer; a teacher's scope comes from their own login"
    )


class TokenOut(ResponseBody):
    id: int
    name: str
    role: RoleName
    created_by: str | None = Field(description="The username of the admin who made it")
    created_at: UtcDateTime
    last_used_at: UtcDateTime | None
    revoked_at: UtcDateTime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The secret, shown this once: only its SHA-256 is kept")


class AuditEntryOut(ResponseBody):
    id: int
    at: UtcDateTime
    actor: str = Field(description="Who: a username and id, or an API token's name and id")
    action: str = Field(description="e.g. student.create, student.change, attendance.export, student.erase")
    target_type: str
    target_id: str | None
    detail: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
    page: int
    page_size: int
