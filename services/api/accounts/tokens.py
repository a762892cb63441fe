"""Bearer tokens: a session token from logging in, or an API token an admin made for a program.

A token is 32 random bytes (URL-safe base64), shown once. Only its SHA-256 is stored: the
secret is high-entropy, so a fast hash cannot be reversed by guessing, and a lookup is one
indexed query. A leaked database therefore holds no usable token.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.api.accounts.users import Role
from services.common.attendance import as_utc, to_db

Kind = Literal["session", "api"]
TOKEN_BYTES = 32
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def new_secret() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is making a request: a signed-in user (session token) or a program (API token)."""

    token_id: int
    kind: Kind
    role: Role
    user_id: int | None  # the signed-in user; None for an API token
    name: str  # the username, or the API token's name

    @property
    def actor(self) -> str:
        """How the audit log names them."""
        if self.kind == "session":
            return f"{self.name} (user {self.user_id})"
        return f"api token '{self.name}' (token {self.token_id})"


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    role: Role
    created_by: str | None  # the creating admin's username
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def issue_session(connection: Connection, user_id: int, role: Role, hours: int) -> tuple[str, datetime]:
    """A new session token for the user; (the secret, when it expires)."""
    secret = new_secret()
    expires_at = (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)
    connection.execute(
        sa.text(
            "INSERT INTO auth_tokens (kind, token_sha256, user_id, role, expires_at) "
            "VALUES ('session', :hash, :user, :role, :expires)"
        ),
        {"hash": digest(secret), "user": user_id, "role": role, "expires": to_db(expires_at)},
    )
    return secret, expires_at


def create_api_token(
    connection: Connection, name: str, role: Role, created_by: int | None
) -> tuple[str, int]:
    """A new API token; (the secret, its id)."""
    secret = new_secret()
    result = connection.execute(
        sa.text(
            "INSERT INTO auth_tokens (kind, token_sha256, name, role, created_by) "
            "VALUES ('api', :hash, :name, :role, :by)"
        ),
        {"hash": digest(secret), "name": name, "role": role, "by": created_by},
    )
    return secret, int(result.lastrowid)


_API_TOKEN_QUERY = """
SELECT t.id, t.name, t.role, u.username AS created_by, t.created_at, t.last_used_at, t.revoked_at
FROM auth_tokens t LEFT JOIN users u ON u.id = t.created_by
WHERE t.kind = 'api'
"""  # noqa: S105 - a query, not a secret


def _api_token(row: sa.Row) -> ApiToken:
    return ApiToken(
        id=int(row.id),
        name=row.name,
        role=row.role,
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        last_used_at=_utc(row.last_used_at),
        revoked_at=_utc(row.revoked_at),
    )


def list_api_tokens(connection: Connection) -> list[ApiToken]:
    return [_api_token(row) for row in connection.execute(sa.text(_API_TOKEN_QUERY + " ORDER BY t.id"))]


def get_api_token(connection: Connection, token_id: int) -> ApiToken | None:
    row = connection.execute(sa.text(_API_TOKEN_QUERY + " AND t.id = :id"), {"id": token_id}).first()
    return _api_token(row) if row else None


def authenticate(connection: Connection, secret: str, now: datetime) -> Principal | None:
    """The principal a token stands for, or None if it is unknown, revoked, expired, or its
    user is disabled. A session token acts with its user's current role."""
    row = connection.execute(
        sa.text(
            "SELECT t.id, t.kind, t.role, t.name, t.user_id, t.last_used_at, "
            "u.username, u.role AS user_role, u.disabled "
            "FROM auth_tokens t LEFT JOIN users u ON u.id = t.user_id "
            "WHERE t.token_sha256 = :hash AND t.revoked_at IS NULL "
            "AND (t.expires_at IS NULL OR t.expires_at > :now)"
        ),
        {"hash": digest(secret), "now": to_db(now)},
    ).first()
    if row is None:
        return None
    if row.kind == "session":
        if row.username is None or row.disabled:
            return None
        principal = Principal(int(row.id), "session", row.user_role, int(row.user_id), row.username)
    else:
        principal = Principal(int(row.id), "api", row.role, None, row.name)
    if row.last_used_at is None or as_utc(row.last_used_at) < now - LAST_USED_RESOLUTION:
        connection.execute(
            sa.text("UPDATE auth_tokens SET last_used_at = :now WHERE id = :id"),
            {"now": to_db(now), "id": principal.token_id},
        )
    return principal


def revoke(connection: Connection, token_id: int) -> None:
    """Revoke a token (an already revoked one keeps its first revocation time)."""
    connection.execute(
        sa.text("UPDATE auth_tokens SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL"),
        {"now": to_db(datetime.now(UTC)), "id": token_id},
    )


def revoke_sessions_of(connection: Connection, user_id: int) -> int:
    """Sign the user out everywhere; how many session tokens were revoked."""
    result = connection.execute(
        sa.text(
            "UPDATE auth_tokens SET revoked_at = :now "
            "WHERE kind = 'session' AND user_id = :user AND revoked_at IS NULL"
        ),
        {"now": to_db(datetime.now(UTC)), "user": user_id},
    )
    return int(result.rowcount)
