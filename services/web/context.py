"""What every request handler shares: the settings, the API client, the live hub and the camera
previews; and the API as the signed-in person sees it."""

from dataclasses import dataclass, field

from flask import current_app

from services.web import identity
from services.web.api_client import ApiClient
from services.web.camera_loads import CameraLoads
from services.web.hub import LiveHub
from services.web.live_preview import PreviewStore, SessionAccess
from services.web.settings import WebSettings

EXTENSION = "attendance_web"


@dataclass(frozen=True)
class WebContext:
    settings: WebSettings
    api: ApiClient
    hub: LiveHub
    previews: PreviewStore = field(default_factory=PreviewStore)  # the latest of each camera
    session_access: SessionAccess = field(default_factory=SessionAccess)  # who may see which
    camera_loads: CameraLoads = field(default_factory=CameraLoads)  # per-camera load (issue 11)


def web() -> WebContext:
    context: WebContext = current_app.extensions[EXTENSION]
    return context


def user_api() -> ApiClient:
    """The API client speaking for the signed-in person: their token on every call, never a
    key of the dashboard's own (the sign-in guard made sure someone is signed in)."""
    return web().api.as_user(identity.token())
