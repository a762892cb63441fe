"""The FastAPI application factory: `create_app(settings)` builds a ready app without starting a
server, so tests drive it with TestClient against a real database and broker."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.api.accounts.dependencies import Authentication
from services.api.accounts.ratelimit import LoginLimiter
from services.api.context import ApiContext
from services.api.errors import install_error_handlers
from services.api.gallery_broadcast import GalleryAnnouncer
from services.api.imports.runner import ImportRunner
from services.api.limits import RequestSizeLimit
from services.api.photos import PhotoChecker
from services.api.routers import (
    attendance,
    audit,
    auth,
    cameras,
    courses,
    health,
    imports,
    reports,
    review,
    sessions,
    students,
    timetable,
    tokens,
    users,
)
from services.api.schemas import ValidationErrorOut
from services.api.settings import ApiSettings
from services.common.db import create_engine

logger = logging.getLogger(__name__)

DESCRIPTION = """
REST API of the face-recognition attendance system: students and their enrollment photos,
cameras, courses and their rosters, class sessions, attendance and CSV exports.

* Every request but `GET /health` and `POST /auth/login` needs `Authorization: Bearer <token>`:
  a session token from `POST /auth/login`, or an API token an admin made (`POST /tokens`).
  Without a valid one: 401; with one whose role or courses do not allow it: 403.
* Times are ISO 8601 with an offset (UTC); a `date` is a day in the school's time zone.
* Every error is JSON `{"detail": "<one sentence>"}`, sometimes with more keys.
* Face encodings are biometric data: no response ever contains one.
* After enrolled faces change, the `X-Gallery-Broadcast` header says whether the recognizers
  were told to reload (`sent`) or will reload when they reconnect to RabbitMQ (`failed`).
"""

TAGS = [
    {"name": "students", "description": "Students and their enrollment photos"},
    {"name": "cameras", "description": "Cameras seen by the system"},
    {"name": "courses", "description": "Courses and their rosters (who is expected)"},
    {"name": "sessions", "description": "Class sessions, scheduled or the default of each day"},
    {
        "name": "timetable",
        "description": "Terms, holidays and each course's weekly slots, which make its sessions",
    },
    {"name": "attendance", "description": "Who was seen when, and CSV exports"},
    {"name": "reports", "description": "Attendance reports of a session, a student, a course over a term"},
    {"name": "health", "description": "Is the API up and connected"},
    {"name": "auth", "description": "Signing in and out"},
    {"name": "users", "description": "User accounts and their roles (admins only)"},
    {"name": "tokens", "description": "API tokens for programs (admins only)"},
    {"name": "audit", "description": "Who created, changed, exported or erased what (admins only)"},
    {"name": "review", "description": "Faces the system would not name, or was unsure of, to decide"},
    {"name": "imports", "description": "Roster imports: a CSV and a ZIP of photos, previewed, then applied"},
]

ROUTERS = (
    students,
    cameras,
    courses,
    sessions,
    timetable,
    attendance,
    reports,
    review,
    imports,
    health,
    auth,
    users,
    tokens,
    audit,
)


def _error_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    }


def _openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every 422 described as the API really answers it (a sentence and
    the list of problems, see services.api.errors) instead of FastAPI's default shape, and the
    answers any route can give documented on each: 400 and 413 for a body, 503 without MySQL."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    default = "#/components/schemas/HTTPValidationError"
    ours = {"$ref": "#/components/schemas/ValidationErrorOut"}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            response = operation.get("responses", {}).get("422")
            if not response:
                continue
            content = response.setdefault("content", {}).setdefault("application/json", {})
            if content.get("schema", {}).get("$ref") == default:
                content["schema"] = ours
                response["description"] = "The request does not fit the schema: a sentence and each problem"
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault(
                    "400", _error_doc("The body cannot be read (not UTF-8, broken multipart)")
                )
                responses.setdefault("413", _error_doc("The request is larger than API_MAX_REQUEST_BYTES"))
            responses.setdefault("503", _error_doc("MySQL is unavailable; try again (Retry-After)"))
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    definitions = ValidationErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(definitions.pop("$defs", {}))
    schemas["ValidationErrorOut"] = definitions
    app.openapi_schema = document
    return document


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    # Requests run on a thread pool; a few connections suffice, the overflow absorbs bursts.
    engine = create_engine(settings, pool_size=5)
    photos = PhotoChecker(
        settings.api_max_photo_bytes, settings.api_min_face_px, settings.recognizer_enroll_jitters
    )
    gallery = GalleryAnnouncer(settings)
    context = ApiContext(
        settings=settings,
        engine=engine,
        photos=photos,
        gallery=gallery,
        login_limiter=LoginLimiter(settings.api_login_attempts, settings.api_login_window_s),
        imports=ImportRunner(engine, photos, gallery),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        logger.info("API ready")
        yield
        await context.imports.close()  # running imports are recorded as interrupted
        context.gallery.close()
        context.engine.dispose()
        logger.info("API stopped")

    app = FastAPI(
        title="Attendance API",
        description=DESCRIPTION,
        version="1.0.0",
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.context = context
    install_error_handlers(app)
    app.add_middleware(
        RequestSizeLimit,
        max_bytes=settings.api_max_request_bytes,
        # A roster's ZIP holds a whole class's photos.
        overrides={("POST", "/imports"): settings.api_import_max_request_bytes},
    )
    # Outermost: no anonymous request reaches routing, body parsing or the size check.
    app.add_middleware(Authentication, engine=context.engine)
    for module in ROUTERS:
        app.include_router(module.router)
    # Every route with its methods, for the Allow header of a 405 (services.api.errors).
    app.state.method_routes = [
        route
        for route in [*(r for module in ROUTERS for r in module.router.routes), *app.router.routes]
        if isinstance(getattr(route, "methods", None), set) and hasattr(route, "path_regex")
    ]
    app.openapi = lambda: _openapi_document(app)  # type: ignore[method-assign]
    return app
