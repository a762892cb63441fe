"""What every request handler shares: the settings, the API client and the live hub."""

from dataclasses import dataclass

from flask import current_app

from services.web.api_client import ApiClient
from services.web.hub import LiveHub
from services.web.settings import WebSettings

EXTENSION = "attendance_web"


@dataclass(frozen=True)
class WebContext:
    settings: WebSettings
    api: ApiClient
    hub: LiveHub


def web() -> WebContext:
    context: WebContext = current_app.extensions[EXTENSION]
    return context
