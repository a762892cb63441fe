"""The Flask app factory: `create_app(settings)` for the server, `create_app(settings, test_config,
api=..., hub=..., previews=...)` for tests. No network at creation: the live consumer is started by __main__.

Every page but /login, /health and the static files needs a signed-in person (auth_pages), and
every API call is made with that person's token (identity.user_api)."""

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from services.web import csrf, identity
from services.web.admin_pages import bp as admin_bp
from services.web.api_client import ApiClient, ApiRefusedError, ApiUnreachableError
from services.web.auth_pages import api_signed_us_out, machine_url, require_sign_in
from services.web.auth_pages import bp as auth_bp
from services.web.camera_loads import CameraLoads
from services.web.context import EXTENSION, WebContext
from services.web.hub import LiveHub
from services.web.import_pages import bp as imports_bp
from services.web.live_pages import bp as live_bp
from services.web.live_preview import PreviewStore
from services.web.report_pages import bp as reports_bp
from services.web.review_pages import bp as review_bp
from services.web.session_pages import bp as sessions_bp
from services.web.settings import WebSettings
from services.web.student_pages import bp as students_bp
from services.web.timetable_pages import bp as timetable_bp

logger = logging.getLogger(__name__)

# Seconds between automatic retries of a page that could not reach the API.
API_RETRY_S = 10
# Everything comes from this server (no CDN, works offline); the browser enforces it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'self'"
)


def hub_for(settings: WebSettings) -> LiveHub:
    return LiveHub(
        feed_size=settings.web_feed_size,
        client_queue_size=settings.web_client_queue_size,
        max_clients=settings.max_live_clients,
    )


def create_app(
    settings: WebSettings | None = None,
    test_config: Mapping[str, Any] | None = None,
    *,
    api: ApiClient | None = None,
    hub: LiveHub | None = None,
    previews: PreviewStore | None = None,
    camera_loads: CameraLoads | None = None,
) -> Flask:
    settings = settings or WebSettings()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.web_secret_key.get_secret_value(),
        MAX_CONTENT_LENGTH=settings.web_max_upload_mb * 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Behind TLS, WEB_COOKIE_SECURE=true: the cookie (which holds the API token) never goes in clear.
        SESSION_COOKIE_SECURE=settings.web_cookie_secure,
    )
    # The cookie lasts as long as the API token it holds (and no longer than Flask's own limit).
    app.session_interface = identity.TokenCookieSessions()
    if test_config:
        app.config.update(test_config)
    app.extensions[EXTENSION] = WebContext(
        settings=settings,
        api=api or ApiClient(settings.web_api_url, settings.web_api_timeout_s),
        hub=hub or hub_for(settings),
        previews=PreviewStore() if previews is None else previews,
        camera_loads=CameraLoads() if camera_loads is None else camera_loads,
    )
    app.jinja_env.globals["timezone"] = settings.timezone
    # First the sign-in guard, then the form token: anonymous requests learn nothing more.
    app.before_request(require_sign_in)
    csrf.init_app(app)
    app.context_processor(lambda: {"user": identity.current_user()})
    app.register_blueprint(auth_bp)
    app.register_blueprint(live_bp)
    app.register_blueprint(students_bp)
    app.register_blueprint(sessions_bp)
    app.register_blueprint(review_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(timetable_bp)
    app.register_blueprint(imports_bp)
    app.register_blueprint(admin_bp)
    _register_errors(app)
    app.after_request(_security_headers)
    return app


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _wants_json() -> bool:
    return machine_url()


def _error(status: int, title: str, message: str, retry_s: int | None = None) -> ResponseReturnValue:
    if _wants_json():
        return jsonify(detail=message), status
    # A projected live page must come back by itself once the API does: no one is there to reload.
    retry_s = retry_s if request.method == "GET" else None
    return render_template("error.html", title=title, message=message, retry_s=retry_s), status


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ApiUnreachableError)
    def api_unreachable(error: ApiUnreachableError) -> ResponseReturnValue:
        return _error(503, "API unreachable", str(error), retry_s=API_RETRY_S)

    @app.errorhandler(ApiRefusedError)
    def api_error(error: ApiRefusedError) -> ResponseReturnValue:
        if error.status == 401:
            return api_signed_us_out()
        if error.status == 403:
            return _error(403, "Not allowed", f"Not allowed: {error.detail}.")
        if error.status == 404:
            return _error(404, "Not found", error.detail)
        logger.warning("%s %s: %s", request.method, request.path, error)
        return _error(502, "API error", f"The API answered {error.status}: {error.detail}")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        status = error.code or 500
        message = error.description or error.name
        if status == 413:
            limit = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
            message = f"The upload is too large: the limit is {limit} MB in all."
        return _error(status, error.name, message)
