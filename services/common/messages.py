"""The messages services exchange: frozen pydantic models, one per event, named in the past tense.

Every model carries `schema_version`; a consumer rejects (dead-letters) what it cannot
validate instead of guessing. Frames are the exception to JSON bodies: a frame's body is the
JPEG itself and `FrameCaptured` travels in the AMQP headers.
"""

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PlainSerializer,
    PositiveInt,
    TypeAdapter,
)

from services.common.settings import CAMERA_ID_PATTERN

CameraId = Annotated[str, Field(pattern=CAMERA_ID_PATTERN)]
# Finite: Infinity or NaN would make the dashboard's JSON invalid (JSON has neither).
Distance = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]

# Every moment a message carries is after this and at most MAX_AHEAD past the receiver's clock
# (cameras' clocks drift a little; year 9999 overflows every local-time conversion).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _plausible(moment: datetime) -> datetime:
    if moment < EARLIEST:
        raise ValueError(f"{moment.isoformat()} is before {EARLIEST.date()}")
    if moment > utc_now() + MAX_AHEAD:
        raise ValueError(f"{moment.isoformat()} is more than a day ahead of this machine's clock")
    return moment


Timestamp = Annotated[AwareDatetime, AfterValidator(_plausible)]


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1] = 1


class FaceBox(BaseModel):
    """A face's bounding box in frame pixels, in face_recognition's (top, right, bottom, left) order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    top: NonNegativeInt
    right: NonNegativeInt
    bottom: NonNegativeInt
    left: NonNegativeInt

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left


class FrameCaptured(Message):
    """Metadata of one camera frame; the JPEG bytes are the message body."""

    camera_id: CameraId
    seq: NonNegativeInt
    captured_at: Timestamp
    width: PositiveInt
    height: PositiveInt
    # A worker may skip this frame for a newer one of its camera (overload, realtime pace); a
    # frame that is not droppable (fast pace: a file processed whole) is processed in order.
    droppable: bool = True

    def to_headers(self) -> dict[str, str | int | bool]:
        headers: dict[str, str | int | bool] = {
            "schema_version": self.schema_version,
            "camera_id": self.camera_id,
            "seq": self.seq,
            "captured_at": self.captured_at.isoformat(),
            "width": self.width,
            "height": self.height,
        }
        if not self.droppable:  # only when it differs, so workers of the previous version still read the rest
            headers["droppable"] = False
        return headers


def _from_base64(value: object) -> object:
    """JSON carries bytes as base64 (and Python code passes bytes as they are)."""
    return base64.b64decode(value, validate=True) if isinstance(value, str) else value


def _crop_from_base64(value: object) -> object:
    """A crop's base64, refused before it is decoded if it is too long to fit the bound."""
    if isinstance(value, str) and len(value) > 4 * (MAX_CROP_BYTES // 3 + 1):
        raise ValueError(f"a face crop is at most {MAX_CROP_BYTES} bytes")
    return _from_base64(value)


def _jpeg(data: bytes) -> bytes:
    if not data.startswith(b"\xff\xd8\xff"):
        raise ValueError("a face crop must be a JPEG")
    return data


# A face crop for the review queue (services/recognizer/crops.py): at most 160 px, a few KB.
MAX_CROP_BYTES = 48 * 1024
CropJpeg = Annotated[
    bytes,
    BeforeValidator(_crop_from_base64),
    AfterValidator(_jpeg),
    PlainSerializer(lambda data: base64.b64encode(data).decode("ascii"), return_type=str, when_used="json"),
    Field(min_length=4, max_length=MAX_CROP_BYTES),
]


class _FaceEvent(Message):
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    camera_id: CameraId
    frame_seq: NonNegativeInt
    captured_at: Timestamp
    recognized_at: Timestamp = Field(default_factory=utc_now)
    box: FaceBox
    worker: str = Field(max_length=100)
    track_id: uuid.UUID | None = None  # the face's track (services/recognizer/tracking.py)
    # A small JPEG of the face, only on looks a person should review (a track that names nobody,
    # or names on thin evidence), a few per track; biometric data, kept by the recorder for
    # RECORDER_REVIEW_RETENTION_DAYS (docs/attendance-record.md, "Review queue").
    crop: CropJpeg | None = Field(None, repr=False)  # repr=False: never in a log line


class TrackEvidence(BaseModel):
    """Why a track carries its name (services.faces.decision): how many fresh looks agreed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fresh: NonNegativeInt  # looks in the decision window
    agreeing: NonNegativeInt  # of them, naming this student by the strict rule
    best_distance: Distance
    mean_distance: Distance
    margin: Distance | None = None  # the thinnest among the agreeing looks
    tier: Literal["confident", "check"]


class FaceRecognized(_FaceEvent):
    """A fresh look at a face whose track is named: the track's decision names this student."""

    kind: Literal["face.recognized"] = "face.recognized"
    student_id: PositiveInt
    student_number: str = Field(max_length=64)
    student_name: str = Field(max_length=200)
    distance: Distance  # measured on this frame's encoding
    # Distance to the second-best student minus `distance`; None with one student enrolled.
    margin: Distance | None = None
    # Obsolete: events once carried a name over from an earlier frame's encoding. Every event
    # is now a fresh encoding; kept so messages of the previous version still validate.
    tracked: bool = False
    evidence: TrackEvidence | None = None


class FaceUnknown(_FaceEvent):
    """A fresh look at a face whose track names nobody (yet): unknown, or not sure enough."""

    kind: Literal["face.unknown"] = "face.unknown"
    best_distance: Distance | None = None
    # The student this face is closest to, for a person to review; never a name by itself.
    candidate_id: PositiveInt | None = None
    # Set when the track's looks name the candidate by the roster rule (services.faces.decision):
    # the recorder marks them, as "check", in a session whose roster holds them; else unknown.
    roster_evidence: TrackEvidence | None = None


IdentityEvent = FaceRecognized | FaceUnknown


def face_fields(event: IdentityEvent) -> dict[str, Any]:
    """What every identity event has (where, when, which face), to restate it as the other kind."""
    return {name: getattr(event, name) for name in _FaceEvent.model_fields}


identity_event_adapter: TypeAdapter[IdentityEvent] = TypeAdapter(
    Annotated[IdentityEvent, Field(discriminator="kind")]
)


class FrameAnalyzed(Message):
    """A worker finished a frame (observability: throughput, latency, which worker). Transient."""

    kind: Literal["frame.analyzed"] = "frame.analyzed"
    camera_id: CameraId
    frame_seq: NonNegativeInt
    captured_at: Timestamp
    analyzed_at: Timestamp = Field(default_factory=utc_now)
    worker: str = Field(max_length=100)
    faces: NonNegativeInt
    recognized: NonNegativeInt
    elapsed_ms: float = Field(ge=0)


class CameraLoad(Message):
    """How a worker served one camera over its last report interval (observability: is every
    camera getting its share?). Published about every few seconds per camera the worker received
    frames of, on the recognizer exchange (`camera.load.<camera>`). Transient.

    `received`: frames of the camera that reached the worker; `processed`: analyzed;
    `dropped`: superseded by a newer frame of the camera before their turn, never analyzed.
    """

    kind: Literal["camera.load"] = "camera.load"
    camera_id: CameraId
    worker: str = Field(max_length=100)
    sent_at: AwareDatetime = Field(default_factory=utc_now)
    interval_s: float = Field(gt=0)
    received: NonNegativeInt
    processed: NonNegativeInt
    dropped: NonNegativeInt
    busy_s: float = Field(0.0, ge=0)  # time spent analyzing this camera's frames


# docs/attendance-record.md, "Statuses"; who set one: recognition, a person or the system.
AttendanceStatus = Literal["present", "late", "absent", "excused"]
StatusSource = Literal["recognition", "person", "system"]


class MarkFields(BaseModel):
    """What every view of an attendance mark shows: the announcement below, the API's marks
    and the CSV's columns (services.common.attendance) all derive from these fields."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    attendance_id: PositiveInt
    session_id: PositiveInt
    session_name: str
    camera_id: CameraId
    student_id: PositiveInt
    student_number: str
    student_name: str
    status: AttendanceStatus
    # Only recognition's marks have sightings: a person's or the system's mark has neither.
    first_seen_at: AwareDatetime | None = None
    distance: Distance | None = None  # of the sighting that made the mark


MARK_FIELDS: tuple[str, ...] = tuple(MarkFields.model_fields)


class AttendanceMarked(Message, MarkFields):
    """A student was marked in a session for the first time (committed to MySQL and the CSV).
    Built from a stored mark with `AttendanceMarked.model_validate(mark)`."""

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    kind: Literal["attendance.marked"] = "attendance.marked"
    # The identity event (sighting) that made the mark, as in the CSV; a fresh id for a mark
    # a person or the system made.
    event_id: uuid.UUID
    marked_at: Timestamp
    first_seen_at: Timestamp | None = None  # MarkFields' own, bounded here where it crosses the broker
    source: StatusSource = "recognition"
    reason: str = Field("", max_length=500)  # a person's mark: why (an excuse, a correction)
    # "check": named on thin evidence (the recognizer's decision), for a person to confirm.
    confidence: Literal["confident", "check"] | None = None


class AttendanceChanged(Message, MarkFields):
    """A mark's status changed (a correction, an excuse, a late sighting of someone the system
    had decided absent), committed to MySQL and journaled to the CSV. `status` is the new one.
    Built from a stored change with `AttendanceChanged.model_validate(change)`."""

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    kind: Literal["attendance.changed"] = "attendance.changed"
    change_event_id: uuid.UUID  # the change's row in the CSV
    corrects: uuid.UUID  # the event_id of the mark it changes
    from_status: AttendanceStatus
    source: StatusSource
    reason: str = Field(max_length=500)
    changed_at: Timestamp
    first_seen_at: Timestamp | None = None


attendance_event_adapter: TypeAdapter[AttendanceMarked | AttendanceChanged] = TypeAdapter(
    Annotated[AttendanceMarked | AttendanceChanged, Field(discriminator="kind")]
)


class GalleryChanged(Message):
    """Enrolled faces changed: every recognizer reloads its gallery."""

    kind: Literal["gallery.changed"] = "gallery.changed"
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    changed_at: Timestamp = Field(default_factory=utc_now)
    student_id: PositiveInt | None = None
    reason: str = Field(max_length=200)


# A camera preview's JPEG: small (services/recognizer/preview.py makes them 480 px wide).
MAX_PREVIEW_BYTES = 512 * 1024
PreviewJpeg = Annotated[
    bytes,
    BeforeValidator(_from_base64),
    PlainSerializer(lambda data: base64.b64encode(data).decode("ascii"), return_type=str, when_used="json"),
    Field(min_length=1, max_length=MAX_PREVIEW_BYTES, repr=False),  # repr=False: never in a log line
]


class FramePreviewed(Message):
    """The latest look of a camera for the live page: a small JPEG of a frame with the faces'
    boxes and names drawn. Transient, at most a few per second per camera, for the dashboard
    only (services.common.topology, "Camera previews"). It shows faces: biometric data, never
    stored or logged."""

    kind: Literal["frame.previewed"] = "frame.previewed"
    camera_id: CameraId
    frame_seq: NonNegativeInt
    captured_at: Timestamp
    worker: str = Field(max_length=100)
    faces: NonNegativeInt  # boxes drawn
    width: PositiveInt = Field(le=4096)
    height: PositiveInt = Field(le=4096)
    jpeg: PreviewJpeg


class CameraHeartbeat(Message):
    """Capture is alive: when it last published a frame, and how the source is doing."""

    kind: Literal["camera.heartbeat"] = "camera.heartbeat"
    camera_id: CameraId
    camera_name: str = Field(max_length=200)
    source: str = Field(max_length=500)
    sent_at: Timestamp = Field(default_factory=utc_now)
    last_frame_at: Timestamp | None = None
    frames_published: NonNegativeInt
    status: Literal["streaming", "reconnecting", "ended"]
