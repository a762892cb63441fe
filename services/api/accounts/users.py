"""The `users` table: people who sign in, each with one role."""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.attendance import as_utc

Role = Literal["admin", "teacher", "viewer"]
ROLES: tuple[Role, ...] = get_args(Role)
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"

_COLUMNS = "id, username, display_name, role, disabled, created_at, password_hash"


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: Role
    disabled: bool
    created_at: datetime  # aware UTC
    password_hash: str  # never leaves the API: the response model does not list it


def _user(row: sa.Row) -> User:
    return User(
        id=int(row.id),
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        disabled=bool(row.disabled),
        created_at=as_utc(row.created_at),
        password_hash=row.password_hash,
    )


def get_user(connection: Connection, user_id: int) -> User | None:
    row = connection.execute(sa.text(f"SELECT {_COLUMNS} FROM users WHERE id = :id"), {"id": user_id}).first()
    return _user(row) if row else None


def find_user(connection: Connection, username: str) -> User | None:
    """By username, whatever its case (the column's collation ignores case)."""
    row = connection.execute(
        sa.text(f"SELECT {_COLUMNS} FROM users WHERE username = :name"), {"name": username}
    ).first()
    return _user(row) if row else None


def list_users(connection: Connection) -> list[User]:
    rows = connection.execute(sa.text(f"SELECT {_COLUMNS} FROM users ORDER BY username, id"))
    return [_user(row) for row in rows]


def create_user(
    connection: Connection, username: str, display_name: str, role: Role, password_hash: str
) -> User:
    """Raises sqlalchemy.exc.IntegrityError if the username is taken."""
    result = connection.execute(
        sa.text(
            "INSERT INTO users (username, display_name, role, password_hash) "
            "VALUES (:username, :display_name, :role, :hash)"
        ),
        {"username": username, "display_name": display_name, "role": role, "hash": password_hash},
    )
    user = get_user(connection, int(result.lastrowid))
    assert user is not None
    return user


def update_user(connection: Connection, user_id: int, changes: dict[str, object]) -> User | None:
    """Set the given columns (display_name, role, password_hash, disabled)."""
    allowed = {"display_name", "role", "password_hash", "disabled"}
    assert set(changes) <= allowed, set(changes) - allowed
    if changes:
        assignments = ", ".join(f"{key} = :{key}" for key in changes)
        connection.execute(
            sa.text(f"UPDATE users SET {assignments} WHERE id = :id"), {**changes, "id": user_id}
        )
    return get_user(connection, user_id)


def active_admin_ids(connection: Connection, lock: bool = False) -> set[int]:
    """Enabled admins (locked for the transaction with lock=True, so two changes cannot both
    remove the last one)."""
    query = "SELECT id FROM users WHERE role = 'admin' AND NOT disabled" + (" FOR UPDATE" if lock else "")
    return {int(value) for value in connection.execute(sa.text(query)).scalars()}


def admin_exists(connection: Connection) -> bool:
    return connection.execute(sa.text("SELECT 1 FROM users WHERE role = 'admin' LIMIT 1")).first() is not None
