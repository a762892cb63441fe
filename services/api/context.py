"""What every request handler needs, built once per app by `create_app`."""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from services.api.accounts.ratelimit import LoginLimiter
from services.api.gallery_broadcast import GalleryAnnouncer
from services.api.imports.runner import ImportRunner
from services.api.photos import PhotoChecker
from services.api.settings import ApiSettings


@dataclass(frozen=True)
class ApiContext:
    settings: ApiSettings
    engine: Engine
    photos: PhotoChecker
    gallery: GalleryAnnouncer
    login_limiter: LoginLimiter
    imports: ImportRunner


def get_context(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context


Context = Annotated[ApiContext, Depends(get_context)]
