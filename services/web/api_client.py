"""The dashboard's only way to the data: the REST API (docs/api-contract.md), over httpx.

Two kinds of failure, so pages can say which: `ApiUnreachableError` (no answer at all: the API is
down or the URL is wrong) and `ApiRefusedError` (the API answered with an error and its reason).
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

logger = logging.getLogger(__name__)


class ApiUnreachableError(Exception):
    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"API unreachable at {base_url} ({reason})")
        self.base_url = base_url
        self.reason = reason


class ApiRefusedError(Exception):
    """An error answer: its status, its one-sentence `detail`, and the whole JSON body."""

    def __init__(self, status: int, detail: str, body: Any = None) -> None:
        super().__init__(f"API answered {status}: {detail}")
        self.status = status
        self.detail = detail
        self.body = body


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
    """Thread-safe (one httpx.Client, pooled connections), shared by every request thread."""

    def __init__(self, base_url: str, timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None):
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url, timeout=httpx.Timeout(timeout_s, connect=5.0), transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, path: str, *, ok: Sequence[int] = (), **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            logger.warning("%s %s: API unreachable at %s (%s)", method, path, self.base_url, reason)
            raise ApiUnreachableError(self.base_url, reason) from error
        if response.is_error and response.status_code not in ok:
            detail, body = _detail(response)
            raise ApiRefusedError(response.status_code, detail, body)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

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

    def create_student(self, student_number: str, name: str) -> dict[str, Any]:
        return dict(self._json("POST", "/students", json={"student_number": student_number, "name": name}))

    def delete_student(self, student_id: int) -> None:
        self._request("DELETE", f"/students/{student_id}")

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

    def session_csv(self, session_id: int) -> Download:
        response = self._request("GET", f"/sessions/{session_id}/attendance.csv")
        return Download(response.content, _filename(response, f"session-{session_id}-attendance.csv"))
