"""The FastAPI application factory: `create_app(settings)` builds a ready app without starting a
server, so tests drive it with TestClient against a real database and broker."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.api.context import ApiContext
from services.api.errors import install_error_handlers
from services.api.gallery_broadcast import GalleryAnnouncer
from services.api.limits import RequestSizeLimit
from services.api.photos import PhotoChecker
from services.api.routers import attendance, cameras, courses, health, sessions, students
from services.api.settings import ApiSettings
from services.common.db import create_engine

logger = logging.getLogger(__name__)

DESCRIPTION = """
REST API of the face-recognition attendance system: students and their enrollment photos,
cameras, courses and their rosters, class sessions, attendance and CSV exports.

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
    {"name": "attendance", "description": "Who was seen when, and CSV exports"},
    {"name": "health", "description": "Is the API up and connected"},
]


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    context = ApiContext(
        settings=settings,
        # Requests run on a thread pool; a few connections suffice, the overflow absorbs bursts.
        engine=create_engine(settings, pool_size=5),
        photos=PhotoChecker(
            settings.api_max_photo_bytes, settings.api_min_face_px, settings.recognizer_encode_jitters
        ),
        gallery=GalleryAnnouncer(settings),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        logger.info("API ready")
        yield
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
    app.add_middleware(RequestSizeLimit, max_bytes=settings.api_max_request_bytes)
    for module in (students, cameras, courses, sessions, attendance, health):
        app.include_router(module.router)
    return app
