"""User accounts (admins only): create, list, change role or password, disable."""

import logging

from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, Admin
from services.api.accounts.passwords import hash_password
from services.api.accounts.tokens import revoke_sessions_of
from services.api.accounts.users import (
    active_admin_ids,
    create_user,
    find_user,
    get_user,
    list_users,
    update_user,
)
from services.api.context import Context
from services.api.errors import ApiError, not_found
from services.api.schemas import ErrorOut, UserIn, UserOut, UserPatch

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/users", tags=["users"], responses=AUTH_RESPONSES)


def _taken(username: str) -> ApiError:
    return ApiError(409, f"username {username} is already taken")


@router.get("", response_model=list[UserOut], summary="Every user, by username")
def users(_admin: Admin, context: Context) -> list[UserOut]:
    with context.engine.connect() as connection:
        return [UserOut.model_validate(user) for user in list_users(connection)]


@router.post(
    "",
    status_code=201,
    response_model=UserOut,
    summary="Add a user",
    responses={409: {"model": ErrorOut, "description": "The username is taken (whatever its case)"}},
)
def add_user(body: UserIn, admin: Admin, context: Context) -> UserOut:
    password_hash = hash_password(body.password)
    try:
        with context.engine.begin() as connection:
            if find_user(connection, body.username) is not None:
                raise _taken(body.username)
            user = create_user(connection, body.username, body.display_name, body.role, password_hash)
            audit.record(
                connection, admin, "user.create", "user", user.id, detail=f"{user.username} as {user.role}"
            )
    except IntegrityError as error:  # a concurrent insert won the race
        raise _taken(body.username) from error
    logger.info("user %d (%s, %s) created", user.id, user.username, user.role)
    return UserOut.model_validate(user)


@router.patch(
    "/{user_id}",
    response_model=UserOut,
    summary="Change a user's name, role or password, or disable them",
    description="Disabling a user or changing their password signs them out everywhere.",
    responses={
        404: {"model": ErrorOut, "description": "No such user"},
        409: {"model": ErrorOut, "description": "It would leave no enabled admin"},
    },
)
def edit_user(user_id: int, body: UserPatch, admin: Admin, context: Context) -> UserOut:
    changes: dict[str, object] = body.model_dump(exclude_none=True, exclude={"password"})
    if body.password is not None:
        changes["password_hash"] = hash_password(body.password)
    with context.engine.begin() as connection:
        before = get_user(connection, user_id)
        if before is None:
            raise not_found("user", user_id)
        admins = active_admin_ids(connection, lock=True)
        stays_admin = changes.get("role", before.role) == "admin" and not changes.get(
            "disabled", before.disabled
        )
        if admins == {user_id} and not stays_admin:
            raise ApiError(409, f"user {user_id} is the only enabled admin; make another admin first")
        user = update_user(connection, user_id, changes)
        assert user is not None
        signed_out = 0
        if body.password is not None or (body.disabled and not before.disabled):
            signed_out = revoke_sessions_of(connection, user_id)
        described = ", ".join(
            "password" if key == "password_hash" else f"{key}: {getattr(before, key)} -> {value}"
            for key, value in changes.items()
        )
        audit.record(connection, admin, "user.change", "user", user_id, detail=described or "nothing")
    if signed_out:
        logger.info("user %d signed out of %d session(s)", user_id, signed_out)
    return UserOut.model_validate(user)
