"""Authentication for every request, and the dependencies routes declare for authorization.

`Authentication` (pure ASGI middleware) runs before routing and before any body is read: a
request to anything but `/health` and `POST /auth/login` without a valid bearer token gets
401, whatever its path, method or body, so an anonymous upload is refused unread. The
principal it finds is kept in the request's state; routes then ask for it (`CurrentUser`)
or for a role (`require("admin")`), which gives 403.
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.accounts.tokens import Principal, authenticate
from services.api.accounts.users import Role
from services.api.errors import ApiError, database_unavailable_response, error_response, is_unavailable
from services.api.schemas import ErrorOut, Responses
from services.common.db import TRANSIENT_DB_ERRORS

logger = logging.getLogger(__name__)

# Open to anonymous requests (any method: the router answers 405 to the wrong one).
OPEN_PATHS = frozenset({"/health", "/auth/login"})
NOT_SIGNED_IN = "not signed in"
CHALLENGE = {"WWW-Authenticate": "Bearer"}
# A token is 43 characters; anything much longer is not one of ours and is not hashed.
MAX_TOKEN_LENGTH = 256


def bearer_secret(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, secret = authorization.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or len(secret) > MAX_TOKEN_LENGTH:
        return None
    return secret


def not_signed_in() -> ApiError:
    return ApiError(401, NOT_SIGNED_IN, headers=CHALLENGE)


class Authentication:
    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    def _principal(self, secret: str) -> Principal | None:
        with self.engine.begin() as connection:
            return authenticate(connection, secret, datetime.now(UTC))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        secret = bearer_secret(Headers(scope=scope).get("authorization"))
        principal = None
        if secret is not None:
            try:
                principal = await run_in_threadpool(self._principal, secret)
            except TRANSIENT_DB_ERRORS as error:
                if not isinstance(error, Exception) or not is_unavailable(error):
                    raise
                logger.warning("database unavailable: %s", getattr(error, "orig", error))
                await database_unavailable_response()(scope, receive, send)
                return
        if principal is None:
            await error_response(401, NOT_SIGNED_IN, CHALLENGE)(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


# Declared by every protected route: OpenAPI then shows the bearer scheme on it.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A session token from POST /auth/login, or an API token an admin made with POST /tokens",
)


def current_user(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):  # only if the middleware was not installed
        raise not_signed_in()
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency giving the principal if their role is one of `roles`, else 403."""
    allowed = " or ".join(roles)

    def dependency(principal: CurrentUser) -> Principal:
        if principal.role not in roles:
            raise ApiError(403, f"this needs the {allowed} role; you are a {principal.role}")
        return principal

    return dependency


Admin = Annotated[Principal, Depends(require("admin"))]

# Documented on every protected route (a router's `responses=`).
AUTH_RESPONSES: Responses = {
    401: {
        "model": ErrorOut,
        "description": "No valid token: missing, unknown, expired or revoked (detail: not signed in)",
        "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    },
    403: {"model": ErrorOut, "description": "The token's role or scope does not allow this"},
}
