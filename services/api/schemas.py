"""Request and response bodies (pydantic). Responses list their fields explicitly, so nothing
stored beside them (such as a face encoding) can ever reach a client."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from services.common.messages import MarkFields
from services.common.settings import CAMERA_ID_PATTERN


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


# Stored times are UTC; they leave as ISO 8601 with an explicit +00:00 offset.
UtcDateTime = Annotated[datetime, PlainSerializer(_iso_utc, return_type=str, when_used="json")]
StudentNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
PersonName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
CourseCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
CameraId = Annotated[str, Field(pattern=CAMERA_ID_PATTERN)]


# FastAPI's `responses=` documentation of extra status codes.
Responses = dict[int | str, dict[str, Any]]


class RequestBody(BaseModel):
    # A misspelt field is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")


class ResponseBody(BaseModel):
    """Built from a stored record with `Model.model_validate(record)`: only the fields listed
    here are read from it, so nothing stored beside them can reach a client."""

    model_config = ConfigDict(from_attributes=True)


class ErrorOut(BaseModel):
    detail: str = Field(description="One sentence saying what went wrong")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    database: str
    broker: str


# Students


class StudentIn(RequestBody):
    student_number: StudentNumber
    name: PersonName


class StudentPatch(RequestBody):
    student_number: StudentNumber | None = None
    name: PersonName | None = None


class StudentOut(ResponseBody):
    id: int
    student_number: str
    name: str
    photo_count: int = Field(description="Enrollment photos (each with one face) on file")
    created_at: UtcDateTime


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
    student_ids: list[Annotated[int, Field(ge=1)]] = Field(max_length=10_000)


class CourseOut(ResponseBody):
    id: int
    code: str
    name: str
    student_ids: list[int]


class SessionIn(RequestBody):
    name: PersonName
    camera_id: CameraId
    starts_at: AwareDatetime = Field(description="ISO 8601 with an offset, e.g. 2024-09-02T08:00:00+02:00")
    ends_at: AwareDatetime
    course_id: Annotated[int, Field(ge=1)] | None = None


class SessionOut(ResponseBody):
    id: int
    name: str
    camera_id: str
    course_id: int | None
    starts_at: UtcDateTime
    ends_at: UtcDateTime
    is_default: bool = Field(description="The camera's whole-day session, used when none is scheduled")


# Attendance


class RollEntryOut(ResponseBody):
    student_id: int
    student_number: str
    student_name: str
    status: Literal["present", "late", "not_seen"]
    first_seen_at: UtcDateTime | None
    last_seen_at: UtcDateTime | None
    distance: float | None
    expected: bool = Field(description="On the session's roster (false: marked, but not expected)")


class SessionAttendanceOut(ResponseBody):
    session: SessionOut
    expected: int
    present: int = Field(description="Expected students marked present or late")
    students: list[RollEntryOut]


class MarkOut(ResponseBody, MarkFields):
    """A mark: the fields every view of a mark shows (MarkFields), and its sightings so far."""

    first_seen_at: UtcDateTime  # the same field, serialised with +00:00 like every API time
    last_seen_at: UtcDateTime
    sightings: int
