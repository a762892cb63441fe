"""Signing in and out: a username and password give a session token (docs/auth-contract.md)."""

import logging

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.api.accounts import audit
from services.api.accounts.dependencies import AUTH_RESPONSES, CurrentUser
from services.api.accounts.passwords import hash_password, needs_rehash, verify_password
from services.api.accounts.tokens import issue_session, revoke
from services.api.accounts.users import find_user, get_user, update_user
from services.api.context import Context
from services.api.errors import ApiError
from services.api.schemas import ErrorOut, LoginIn, LoginOut, UserOut

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/auth", tags=["auth"])

WRONG = "wrong username or password"


def client_address(request: Request) -> str:
    # Behind a proxy (the dashboard), uvicorn puts the X-Forwarded-For address here when the
    # proxy's address is in FORWARDED_ALLOW_IPS.
    return request.client.host if request.client else "unknown"


@router.post(
    "/login",
    response_model=LoginOut,
    summary="Sign in: a session token for a username and password",
    description="The token lasts API_SESSION_HOURS, or until POST /auth/logout. Failed logins are "
    "limited per username and per client address (API_LOGIN_ATTEMPTS per API_LOGIN_WINDOW_S).",
    openapi_extra={"security": []},
    responses={
        401: {"model": ErrorOut, "description": "Wrong username or password, or a disabled account"},
        429: {
            "model": ErrorOut,
            "description": "Too many failed logins for this username or address",
            "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
        },
    },
)
def login(body: LoginIn, request: Request, context: Context) -> LoginOut:
    address = client_address(request)
    wait = context.login_limiter.retry_after(body.username, address)
    if wait is not None:
        logger.warning("login for %r from %s refused: too many failures", body.username, address)
        raise ApiError(
            429, f"too many failed logins; try again in {wait} s", headers={"Retry-After": str(wait)}
        )
    with context.engine.connect() as connection:
        user = find_user(connection, body.username)
    # Verified even for an unknown or disabled user, so the answer's timing tells nothing.
    if (
        not verify_password(user.password_hash if user else None, body.password)
        or user is None
        or user.disabled
    ):
        context.login_limiter.failed(body.username, address)
        logger.warning("failed login for %r from %s", body.username, address)
        raise ApiError(401, WRONG)
    with context.engine.begin() as connection:
        if needs_rehash(user.password_hash):
            update_user(connection, user.id, {"password_hash": hash_password(body.password)})
        secret, expires_at = issue_session(connection, user.id, user.role, context.settings.api_session_hours)
    logger.info("user %d (%s) signed in from %s", user.id, user.username, address)
    return LoginOut(token=secret, expires_at=expires_at, user=UserOut.model_validate(user))


@router.post(
    "/logout",
    status_code=204,
    response_class=Response,
    summary="Sign out: the token used for this request is revoked",
    responses={**AUTH_RESPONSES, 204: {"description": "Signed out"}},
)
def logout(principal: CurrentUser, context: Context) -> Response:
    with context.engine.begin() as connection:
        revoke(connection, principal.token_id)
        if principal.kind == "api":  # a program revoking its own token: worth a trace
            audit.record(
                connection, principal, "token.revoke", "token", principal.token_id, detail="by itself"
            )
    return Response(status_code=204)


@router.get(
    "/me",
    response_model=UserOut,
    summary="Who is signed in",
    responses={**AUTH_RESPONSES, 403: {"model": ErrorOut, "description": "An API token is not a user"}},
)
def me(principal: CurrentUser, context: Context) -> UserOut:
    if principal.user_id is None:
        raise ApiError(
            403, f"this is an API token ({principal.name}, {principal.role}), not a signed-in user"
        )
    with context.engine.connect() as connection:
        user = get_user(connection, principal.user_id)
    if user is None:  # cannot happen: the token's user was just read
        raise ApiError(401, "not signed in", headers={"WWW-Authenticate": "Bearer"})
    return UserOut.model_validate(user)
