"""The dashboard's only way to the data: the REST API (docs/api-contract.md), over httpx.

Two kinds of failure, so pages can say which: `ApiUnreachableError` (no answer at all: the API is
down or the URL is wrong) and `ApiRefusedError` (the API answered with an error and its reason).

Every call is made as someone (docs/auth-contract.md): `ApiClient.as_user(token)` gives a view of
the one shared connection pool that sends `Authorization: Bearer <token>`, the signed-in person's
session token. The dashboard has no key of its own: the bare client can only reach `/health` and
`POST /auth/login`.
"""

import copy
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import httpx

logger = logging.getLogger(__name__)


class ApiUnreachableError(Exception):
    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"API unreachable at {base_url} ({reason})")
        self.base_url = base_url
        self.reason = reason


class ApiRefusedError(Exception):
    """An error answer: its status, its one-sentence `detail`, and the whole JSON body."""

    def __init__(self, status: int, detail: str, body: Any = None, retry_after_s: int | None = None) -> None:
        super().__init__(f"API answered {status}: {detail}")
        self.status = status
        self.detail = detail
        self.body = body
        self.retry_after_s = retry_after_s  # from Retry-After, on a 429


@dataclass(frozen=True)
class PhotoOutcome:
    filename: str
    accepted: bool
    reason: str = ""  # why it was refused


@dataclass(frozen=True)
class PhotoUpload:
    """What became of each photo sent to POST /students/{id}/photos."""

    outcomes: list[PhotoOutcome] = field(default_factory=list)
    photo_count: int | None = None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> "PhotoUpload":
        outcomes = [PhotoOutcome(str(item.get("filename", "")), True) for item in body.get("accepted", [])]
        outcomes += [
            PhotoOutcome(str(item.get("filename", "")), False, str(item.get("reason", "refused")))
            for item in body.get("rejected", [])
        ]
        return cls(outcomes, body.get("photo_count"))


@dataclass(frozen=True)
class SignedIn:
    """What POST /auth/login answers: the session token, when it expires, and who it is."""

    token: str
    expires_at: datetime
    user: dict[str, Any]


@dataclass(frozen=True)
class Download:
    content: bytes
    filename: str


def _detail(response: httpx.Response) -> tuple[str, Any]:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (text[:200] or response.reason_phrase or "no reason given"), None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's validation errors: say the first one
        first = detail[0] if detail else {}
        detail = first.get("msg", str(first)) if isinstance(first, dict) else str(first)
    return str(detail or response.reason_phrase or "no reason given"), body


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "").strip()
    return int(value) if value.isdigit() else None


def _filename(response: httpx.Response, default: str) -> str:
    disposition = response.headers.get("content-disposition", "")
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        # Only a plain file name is passed on to browsers: no paths, quotes or header tricks.
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", value.strip().strip('"')).lstrip(".")
        if key.lower() == "filename" and safe:
            return safe
    return default


class ApiClient:
    """Thread-safe (one httpx.Client, pooled connections), shared by every request thread.

    The client made by the app carries no token; `as_user(token)` is the same pool speaking for
    one person, made afresh for each request from that person's session.
    """

    def __init__(self, base_url: str, timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url, timeout=httpx.Timeout(timeout_s, connect=5.0), transport=transport
        )
        self._token: str | None = None

    def close(self) -> None:
        self._client.close()

    def as_user(self, token: str) -> "ApiClient":
        """This client's connection pool, every call carrying `Authorization: Bearer <token>`."""
        if not token:
            raise ValueError("an API call on someone's behalf needs their token")
        view = copy.copy(self)
        view._token = token
        return view

    @property
    def signed_in(self) -> bool:
        return self._token is not None

    def _request(
        self,
        method: str,
        path: str,
        *,
        ok: Sequence[int] = (),
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(headers or {})
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            response = self._client.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            logger.warning("%s %s: API unreachable at %s (%s)", method, path, self.base_url, reason)
            raise ApiUnreachableError(self.base_url, reason) from error
        if response.is_error and response.status_code not in ok:
            detail, body = _detail(response)
            raise ApiRefusedError(response.status_code, detail, body, _retry_after(response))
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # Accounts (docs/auth-contract.md)

    def login(self, username: str, password: str, client_address: str | None = None) -> SignedIn:
        """POST /auth/login. `client_address` is the browser's, for the API's per-address limit
        (every login reaches the API from the dashboard's own address)."""
        headers = {"X-Forwarded-For": client_address} if client_address else None
        body = self._json(
            "POST", "/auth/login", json={"username": username, "password": password}, headers=headers
        )
        expires_at = datetime.fromisoformat(str(body["expires_at"]))
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return SignedIn(str(body["token"]), expires_at, dict(body["user"]))

    def logout(self) -> None:
        self._request("POST", "/auth/logout")

    def me(self) -> dict[str, Any]:
        return dict(self._json("GET", "/auth/me"))

    def users(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/users"))

    def create_user(self, username: str, display_name: str, role: str, password: str) -> dict[str, Any]:
        body = {"username": username, "display_name": display_name, "role": role, "password": password}
        return dict(self._json("POST", "/users", json=body))

    def update_user(self, user_id: int, **changes: Any) -> dict[str, Any]:
        """PATCH /users/{id} with any of display_name, role, password, disabled."""
        return dict(self._json("PATCH", f"/users/{user_id}", json=changes))

    def tokens(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/tokens"))

    def create_token(self, name: str, role: str) -> dict[str, Any]:
        """The new token's record, with the secret itself under "token" (given this once only)."""
        return dict(self._json("POST", "/tokens", json={"name": name, "role": role}))

    def revoke_token(self, token_id: int) -> None:
        self._request("DELETE", f"/tokens/{token_id}")

    def audit(self, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        return dict(self._json("GET", "/audit", params={"page": page, "page_size": page_size}))

    # Courses

    def courses(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/courses"))

    def set_course_teachers(self, course_id: int, user_ids: Sequence[int]) -> dict[str, Any]:
        return dict(self._json("PUT", f"/courses/{course_id}/teachers", json={"user_ids": list(user_ids)}))

    def create_course(self, code: str, name: str) -> dict[str, Any]:
        return dict(self._json("POST", "/courses", json={"code": code, "name": name}))

    def set_course_late_after(self, course_id: int, minutes: int | None) -> dict[str, Any]:
        return dict(self._json("PUT", f"/courses/{course_id}/late-after", json={"minutes": minutes}))

    def set_roster(self, course_id: int, student_ids: Sequence[int]) -> dict[str, Any]:
        return dict(
            self._json("PUT", f"/courses/{course_id}/students", json={"student_ids": list(student_ids)})
        )

    # Timetable

    def terms(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/terms"))

    def create_term(self, name: str, first_day: str, last_day: str) -> dict[str, Any]:
        return dict(
            self._json("POST", "/terms", json={"name": name, "first_day": first_day, "last_day": last_day})
        )

    def holidays(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/holidays"))

    def create_holiday(self, name: str, first_day: str, last_day: str) -> dict[str, Any]:
        body = {"name": name, "first_day": first_day, "last_day": last_day}
        return dict(self._json("POST", "/holidays", json=body))

    def delete_holiday(self, holiday_id: int) -> None:
        self._request("DELETE", f"/holidays/{holiday_id}")

    def slots(self, course_id: int) -> list[dict[str, Any]]:
        return list(self._json("GET", f"/courses/{course_id}/slots"))

    def create_slot(self, course_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._json("POST", f"/courses/{course_id}/slots", json=body))

    def delete_slot(self, course_id: int, slot_id: int) -> None:
        self._request("DELETE", f"/courses/{course_id}/slots/{slot_id}")

    # Health, cameras

    def health(self) -> dict[str, Any]:
        response = self._request("GET", "/health", ok=(503,), timeout=3.0)
        try:
            return dict(response.json())
        except ValueError:
            return {"status": f"HTTP {response.status_code}"}

    def cameras(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/cameras"))

    # Students

    def students(self, query: str = "", page: int = 1, page_size: int = 50) -> dict[str, Any]:
        params = {"query": query, "page": page, "page_size": page_size}
        return dict(self._json("GET", "/students", params=params))

    def student(self, student_id: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/students/{student_id}"))

    def create_student(
        self, student_number: str, name: str, consent: bool = False, consent_note: str = ""
    ) -> dict[str, Any]:
        body = {
            "student_number": student_number,
            "name": name,
            "consent": consent,
            "consent_note": consent_note,
        }
        return dict(self._json("POST", "/students", json=body))

    def set_consent(self, student_id: int, given: bool, note: str = "") -> dict[str, Any]:
        """PUT /students/{id}/consent: record it, or withdraw it (the answer says what was erased)."""
        body: dict[str, Any] = {"given": given, "note": note} if given else {"given": False}
        return dict(self._json("PUT", f"/students/{student_id}/consent", json=body))

    def delete_student(self, student_id: int) -> dict[str, Any]:
        """The erasure report: what was erased, what is kept and why."""
        return dict(self._json("DELETE", f"/students/{student_id}"))

    def add_photos(self, student_id: int, photos: Sequence[tuple[str, bytes, str]]) -> PhotoUpload:
        """Send (filename, bytes, content type) photos.

        A 422 with per-photo reasons is an answer (some photos refused), not an error.
        """
        files = [("photos", (name, content, kind)) for name, content, kind in photos]
        response = self._request("POST", f"/students/{student_id}/photos", files=files, ok=(422,))
        body = response.json()
        if response.status_code == 422 and not ("accepted" in body or "rejected" in body):
            detail, _ = _detail(response)
            raise ApiRefusedError(422, detail, body)
        return PhotoUpload.from_body(body)

    # Roster imports (docs/api-contract.md, "Roster imports")

    def create_import(
        self, roster: tuple[str, IO[bytes], str], photos: tuple[str, IO[bytes], str] | None
    ) -> dict[str, Any]:
        """POST /imports with the CSV and the optional ZIP as (filename, file, content type): the
        files are streamed from where the upload was spooled, never read whole into memory."""
        files = [("roster", roster)] + ([("photos", photos)] if photos is not None else [])
        return dict(self._json("POST", "/imports", files=files))

    def imports(self, limit: int = 20) -> list[dict[str, Any]]:
        return list(self._json("GET", "/imports", params={"limit": limit}))

    def import_job(self, import_id: int, rows: bool = True) -> dict[str, Any]:
        params = {"rows": "true" if rows else "false"}
        return dict(self._json("GET", f"/imports/{import_id}", params=params))

    def apply_import(self, import_id: int) -> dict[str, Any]:
        return dict(self._json("POST", f"/imports/{import_id}/apply"))

    def discard_import(self, import_id: int) -> None:
        self._request("DELETE", f"/imports/{import_id}")

    def student_attendance(self, student_id: int) -> list[dict[str, Any]]:
        return list(self._json("GET", f"/students/{student_id}/attendance"))

    # Sessions and attendance

    def sessions(self, day: str | None = None, camera_id: str | None = None) -> list[dict[str, Any]]:
        params = {key: value for key, value in (("date", day), ("camera_id", camera_id)) if value}
        return list(self._json("GET", "/sessions", params=params))

    def current_sessions(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/sessions/current"))

    def session(self, session_id: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/sessions/{session_id}"))

    def session_attendance(self, session_id: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/sessions/{session_id}/attendance"))

    def review_count(self, session_id: int) -> int:
        """How many review items of the session wait for a person (GET /sessions/{id}/review/count)."""
        return int(self._json("GET", f"/sessions/{session_id}/review/count")["open"])

    def set_status(self, session_id: int, student_id: int, status: str, reason: str) -> dict[str, Any]:
        """PUT /sessions/{id}/attendance/{student_id}: a correction or an excuse, with its reason."""
        body = {"status": status, "reason": reason}
        return dict(self._json("PUT", f"/sessions/{session_id}/attendance/{student_id}", json=body))

    def session_history(self, session_id: int) -> list[dict[str, Any]]:
        return list(self._json("GET", f"/sessions/{session_id}/attendance/history"))

    def session_csv(self, session_id: int) -> Download:
        response = self._request("GET", f"/sessions/{session_id}/attendance.csv")
        return Download(response.content, _filename(response, f"session-{session_id}-attendance.csv"))

    # The review queue (docs/api-contract.md, "Review queue")

    def review_items(
        self, session_id: int, state: str = "open", page: int = 1, page_size: int = 100
    ) -> dict[str, Any]:
        params = {"state": state, "page": page, "page_size": page_size}
        return dict(self._json("GET", f"/sessions/{session_id}/review", params=params))

    def review_crop(self, crop_id: int) -> bytes:
        """A face crop's JPEG (GET /review/crops/{id}); the API checks who may see its session."""
        return self._request("GET", f"/review/crops/{crop_id}").content

    def review_action(self, item_id: int, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /review/items/{id}/assign|dismiss|undo."""
        return dict(self._json("POST", f"/review/items/{item_id}/{action}", json=body))

    # Reports (docs/api-contract.md, "Reports"): JSON to show, CSV passed on as it is (its
    # cells are already made safe for spreadsheets by the API).

    def course_report(self, course_id: int, term_id: int, threshold: float | None = None) -> dict[str, Any]:
        params = {} if threshold is None else {"threshold": threshold}
        return dict(self._json("GET", f"/reports/courses/{course_id}/terms/{term_id}", params=params))

    def course_report_csv(self, course_id: int, term_id: int, threshold: float | None = None) -> Download:
        params = {} if threshold is None else {"threshold": threshold}
        path = f"/reports/courses/{course_id}/terms/{term_id}.csv"
        return self._download(path, params, f"report-course-{course_id}-term-{term_id}.csv")

    def session_report(self, session_id: int) -> dict[str, Any]:
        return dict(self._json("GET", f"/reports/sessions/{session_id}"))

    def session_report_csv(self, session_id: int) -> Download:
        return self._download(f"/reports/sessions/{session_id}.csv", {}, f"report-session-{session_id}.csv")

    def student_report(
        self, student_id: int, start: str | None = None, end: str | None = None
    ) -> dict[str, Any]:
        params = {key: value for key, value in (("start", start), ("end", end)) if value}
        return dict(self._json("GET", f"/reports/students/{student_id}", params=params))

    def student_report_csv(
        self, student_id: int, start: str | None = None, end: str | None = None
    ) -> Download:
        params = {key: value for key, value in (("start", start), ("end", end)) if value}
        path = f"/reports/students/{student_id}.csv"
        return self._download(path, params, f"report-student-{student_id}.csv")

    def _download(self, path: str, params: dict[str, Any], default_name: str) -> Download:
        response = self._request("GET", path, params=params)
        return Download(response.content, _filename(response, default_name))
