"""Every error is JSON `{"detail": "<one sentence>"}` (plus optional keys), never HTML or a trace.

Handlers here turn FastAPI's and Starlette's terse defaults ("Not Found", a raw list of
validation errors) into sentences a person can act on, and keep the raw data beside them.
"""

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.db import TRANSIENT_DB_ERRORS

logger = logging.getLogger(__name__)

# Where a validation error sits; the dashboard knows what it sent, so these prefixes only add noise.
_LOCATIONS = {"body", "query", "path", "header", "cookie"}


class ApiError(Exception):
    """An expected failure with a status, a sentence, and optional extra JSON keys and headers."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})


def not_found(what: str, identifier: object) -> ApiError:
    return ApiError(404, f"{what} {identifier} does not exist")


def error_response(
    status_code: int, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"detail": detail, **jsonable_encoder(extra)}, status_code, headers=headers)


def validation_sentence(errors: Sequence[Mapping[str, Any]]) -> str:
    """'student_number: String should have at most 64 characters; name: Field required'."""
    sentences = []
    for error in errors:
        if error.get("type") == "json_invalid":
            sentences.append("the request body is not valid JSON")
            continue
        loc = [str(part) for part in error.get("loc", ())]
        if len(loc) > 1 and loc[0] in _LOCATIONS:
            loc = loc[1:]
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        sentences.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return "; ".join(sentences) or "the request is invalid"


async def _api_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(error.status_code, error.detail, error.headers, **error.extra)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's own 405 names only the first
    route that matched the path, though GET and POST of one path are often two routes.
    `create_app` lists the routes in `app.state.method_routes`."""
    methods: set[str] = set()
    for route in getattr(request.app.state, "method_routes", []):
        if route.path_regex.match(request.url.path):
            methods |= route.methods
    return sorted(methods)


# FastAPI's sentence when a body is not UTF-8 or a multipart body is malformed.
_UNREADABLE_BODY = "There was an error parsing the body"


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = str(error.detail)
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    # Starlette's own 404/405 carry just the status phrase; say what was asked instead.
    if detail == HTTPStatus(error.status_code).phrase:
        if error.status_code == 404:
            detail = f"there is no {request.url.path} here (the API is described at /docs)"
        elif error.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        else:
            detail = f"the request failed: {detail.lower()}"
    elif error.status_code == 400 and detail == _UNREADABLE_BODY:
        detail = "the request body cannot be read: JSON must be UTF-8, multipart well formed"
    return error_response(error.status_code, detail, headers)


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # Inputs are dropped: an uploaded file or a long body has no place in an error message.
    errors = [{k: v for k, v in e.items() if k in {"type", "loc", "msg"}} for e in error.errors()]
    return error_response(422, validation_sentence(errors), errors=errors)


# MySQL error numbers that mean "unreachable, refusing us, or busy": worth trying again later.
# PyMySQL files every unmapped error (a bad column name, say) as OperationalError too, and a
# bug must stay a 500 rather than pass for an outage.
_UNAVAILABLE_ERRNOS = {1040, 1045, 1049, 1205, 1213, 2002, 2003, 2005, 2006, 2013, 2055}


def is_unavailable(error: Exception) -> bool:
    if isinstance(error, sa.exc.InterfaceError):
        return True
    args: tuple[object, ...] = getattr(getattr(error, "orig", None), "args", ())
    return bool(args) and args[0] in _UNAVAILABLE_ERRNOS


async def _database_down(request: Request, error: Exception) -> JSONResponse:
    if not is_unavailable(error):
        return await _unexpected(request, error)
    logger.warning("database unavailable: %s", getattr(error, "orig", error))
    return database_unavailable_response()


def database_unavailable_response() -> JSONResponse:
    return error_response(503, "the database is unavailable; try again shortly", {"Retry-After": "5"})


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(500, "the server failed to handle this request; the error is in the API's log")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for error_type in TRANSIENT_DB_ERRORS:
        if issubclass(error_type, Exception):
            app.add_exception_handler(error_type, _database_down)
    app.add_exception_handler(Exception, _unexpected)
