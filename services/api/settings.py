"""API settings (environment variables of the same names, e.g. API_PORT)."""

from pydantic import Field, ValidationInfo, field_validator

from services.common.settings import BrokerSettings, DatabaseSettings, TimetableSettings
from services.faces.enrollment import DEFAULT_MIN_FACE_PX
from services.faces.settings import RecognitionSettings

MB = 1024 * 1024


class ApiSettings(RecognitionSettings, BrokerSettings, DatabaseSettings, TimetableSettings):
    api_host: str = "0.0.0.0"  # noqa: S104 - the API serves other containers and machines
    api_port: int = Field(8000, ge=1, le=65535)
    # One enrollment photo; a portrait from a phone is 2-6 MB.
    api_max_photo_bytes: int = Field(10 * MB, ge=1)
    # Faces smaller than this (pixels, shorter side) are refused: too few pixels for a good encoding.
    api_min_face_px: int = Field(DEFAULT_MIN_FACE_PX, ge=0, le=2000)
    # A whole request (several photos in one upload), refused before it is read.
    api_max_request_bytes: int = Field(64 * MB, ge=1)
    # Photos in one enrollment request; more gets a 422 before any is analysed (analysis is
    # about 0.6 s of CPU a photo, and one photo is analysed at a time across all requests).
    api_max_photos_per_request: int = Field(10, ge=1, le=1000)
    # Seconds one enrollment request may spend waiting for and analysing its photos; photos
    # not started by then are refused ("not analysed: ...") and the ones analysed are kept.
    api_enroll_time_budget_s: float = Field(30.0, gt=0, le=3600)
    # A login's session token lasts this long (hours), then the person signs in again.
    api_session_hours: int = Field(12, ge=1, le=24 * 31)
    # Failed logins allowed per username and per client address within API_LOGIN_WINDOW_S
    # seconds; past them, 429 with Retry-After.
    api_login_attempts: int = Field(5, ge=1, le=10_000)
    api_login_window_s: int = Field(300, ge=1, le=86_400)
    # A course report lists the students whose attendance rate is under this (percent); a
    # request may ask for another (?threshold=).
    api_report_threshold_percent: float = Field(80.0, ge=0, le=100, allow_inf_nan=False)
    # Roster imports (POST /imports): the CSV's size and lines (also the files in its ZIP), the
    # ZIP's photos uncompressed altogether, and the whole upload (instead of
    # API_MAX_REQUEST_BYTES, which is about photos sent one request at a time).
    api_import_max_csv_bytes: int = Field(2 * MB, ge=1)
    api_import_max_rows: int = Field(5000, ge=1, le=100_000)
    api_import_max_unzipped_mb: int = Field(2048, ge=1)
    api_import_max_request_bytes: int = Field(512 * MB, ge=1)
    # Seconds a connection has to send a whole request (headers and body), from its opening or
    # its previous response; then it is closed (services/api/__main__.py).
    api_request_timeout_s: float = Field(30.0, ge=1, le=600)

    @field_validator("api_max_request_bytes")
    @classmethod
    def _request_fits_a_photo(cls, value: int, info: ValidationInfo) -> int:
        # Otherwise a single photo just over the photo limit could never get its clear 422 reason.
        photo_limit = info.data.get("api_max_photo_bytes")
        if photo_limit is not None and value < photo_limit:
            raise ValueError(f"must be at least API_MAX_PHOTO_BYTES ({photo_limit})")
        return value
