"""Who is signed in, kept in the Flask session (a signed, HttpOnly cookie), and what their role
may do on the dashboard's pages.

The API is the authority (docs/auth-contract.md): it checks every call, made with the person's
own session token. The permissions here only decide which links and forms a page shows, and
let a page refuse at once what the API would refuse anyway.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import abort, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin

from services.web.api_client import SignedIn

KEY = "auth"
ROLES = ("admin", "teacher", "viewer")

# What each role may do on the dashboard (see the roles in docs/auth-contract.md). Reading is
# everyone's: what a teacher reads is narrowed by the API to their courses.
PERMISSIONS: dict[str, frozenset[str]] = {
    "students.create": frozenset({"admin"}),
    "students.enroll": frozenset({"admin", "teacher"}),  # photos of students on their courses
    "students.consent": frozenset({"admin", "teacher"}),  # record or withdraw it, the same students
    "students.delete": frozenset({"admin"}),  # erasure
    "attendance.correct": frozenset({"admin", "teacher"}),  # statuses of their courses' sessions
    "timetable.manage": frozenset({"admin"}),  # courses, rosters, terms, holidays, weekly slots
    "students.import": frozenset({"admin"}),  # roster imports: a CSV of students, a ZIP of photos
    "admin": frozenset({"admin"}),  # users, API tokens, course teachers, the audit log
}


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: str

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> "User":
        return cls(
            id=int(body["id"]),
            username=str(body["username"]),
            display_name=str(body.get("display_name") or body["username"]),
            role=str(body["role"]),
        )

    def can(self, permission: str) -> bool:
        if permission not in PERMISSIONS:
            raise KeyError(f"unknown permission {permission!r}")
        return self.role in PERMISSIONS[permission]


def sign_in(signed_in: SignedIn) -> User:
    """A fresh session (no form token or message of the anonymous one survives) for this person."""
    user = User.from_api(signed_in.user)
    session.clear()
    session[KEY] = {
        "token": signed_in.token,
        "expires_at": signed_in.expires_at.astimezone(UTC).isoformat(),
        "user": {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name,
            "role": user.role,
        },
    }
    session.permanent = True  # the cookie lasts as long as the token (TokenCookieSessions)
    return user


def sign_out() -> None:
    session.clear()


def _auth(store: SessionMixin) -> dict[str, Any] | None:
    auth = store.get(KEY)
    return auth if isinstance(auth, dict) else None


def expires_at(store: SessionMixin) -> datetime | None:
    auth = _auth(store)
    if auth is None:
        return None
    try:
        return datetime.fromisoformat(str(auth["expires_at"]))
    except (KeyError, ValueError):
        return None


def signed_in(now: datetime | None = None) -> bool:
    """A person is signed in and their token has not expired yet."""
    ends = expires_at(session)
    return ends is not None and ends > (now or datetime.now(UTC)) and bool(token())


def token() -> str:
    auth = _auth(session)
    return str(auth.get("token") or "") if auth else ""


def current_user() -> User | None:
    auth = _auth(session)
    if auth is None or not signed_in():
        return None
    try:
        return User.from_api(auth["user"])
    except (KeyError, TypeError, ValueError):
        return None


def require(permission: str) -> User:
    """The signed-in person, or a 403 page when their role may not do this."""
    user = current_user()
    if user is None or not user.can(permission):
        role = user.role if user else "anonymous"
        abort(403, description=f"A {role} may not do this; ask an admin.")
    return user


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this dashboard, else None: never somewhere else (an open
    redirect), nor back to the login or logout page."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    # Browsers read a backslash as a slash and drop tabs and newlines: "/\\evil" is "//evil".
    if any(char == "\\" or ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    if parts.path in ("/login", "/logout"):
        return None
    return target


class TokenCookieSessions(SecureCookieSessionInterface):
    """The session cookie expires with the API token it holds; before sign-in it is a browser
    session cookie (a form token and messages only)."""

    def get_expiration_time(self, app: Any, session: SessionMixin) -> datetime | None:
        return expires_at(session) if session.permanent else None
