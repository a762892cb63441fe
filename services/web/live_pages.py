"""The live page (current sessions, or one session), its JSON snapshot, the event stream, /health.

What a person sees live is what the API lets them read: the page and its snapshot come from
the API with their token, and their event stream is filtered (hub.Visible) to the sessions the
API lists for them: the ones the page shows (`/events?session=<id>`, each checked with
GET /sessions/{id}), or else their current ones (GET /sessions/current). The consumer itself
receives every camera's events, as before.
"""

import logging
from typing import Any

from flask import Blueprint, Response, abort, jsonify, render_template, request

from services.web import identity, sse, views
from services.web.api_client import ApiClient, ApiRefusedError, ApiUnreachableError
from services.web.context import user_api, web
from services.web.hub import TooManyClientsError, Visible

logger = logging.getLogger(__name__)

bp = Blueprint("live", __name__)

# Sessions one event stream may follow by id (each is checked with the API).
MAX_STREAM_SESSIONS = 20
# Seconds between two checks of a live page for its review queue's count.
REVIEW_POLL_S = 15


def _review_count(api: ApiClient, session_id: int) -> int | None:
    """The session's open review items; None if this person may not see its review queue."""
    try:
        return api.review_count(session_id)
    except ApiRefusedError as error:
        if error.status not in (403, 404):
            raise
        return None


def _state(session_id: int) -> dict[str, Any]:
    context = web()
    api = user_api()
    attendance = api.session_attendance(session_id)  # the API refuses a session not theirs
    session = attendance["session"]
    camera_id = str(session.get("camera_id", ""))
    # The camera's feed, but only what it saw during this session: a camera serves one class
    # after another, and the class before may be someone else's.
    during = Visible.from_api([session])
    recent = [entry for entry in context.hub.recent(camera_id) if during.covers(camera_id, entry.get("at"))]
    state = views.live_state(attendance, recent, context.settings.tz)
    state["review_open"] = _review_count(api, session_id)
    return state


def visible_sessions(api: ApiClient, session_ids: list[int]) -> Visible:
    """What a stream may carry: the given sessions the person may read, or else their current ones."""
    if not session_ids:
        return Visible.from_api(api.current_sessions())
    sessions = []
    for session_id in sorted(set(session_ids))[:MAX_STREAM_SESSIONS]:
        try:
            sessions.append(api.session(session_id))
        except ApiRefusedError as error:
            if error.status not in (403, 404):
                raise
    return Visible.from_api(sessions)


def _live_page(states: list[dict[str, Any]], follow_current: bool) -> str:
    context = web()
    return render_template(
        "live.html",
        states=states,
        follow_current=follow_current,
        feed_size=context.settings.web_feed_size,
        preview_refresh_ms=round(context.settings.web_preview_refresh_s * 1000),
        review_poll_ms=REVIEW_POLL_S * 1000,
    )


@bp.get("/")
def index() -> str:
    """Every camera's current session; the page reloads itself when that set changes."""
    sessions = user_api().current_sessions()
    return _live_page([_state(int(s["id"])) for s in sessions], follow_current=True)


@bp.get("/sessions/<int:session_id>/live")
def session_live(session_id: int) -> str:
    return _live_page([_state(session_id)], follow_current=False)


@bp.get("/sessions/<int:session_id>/state.json")
def session_state(session_id: int) -> Response:
    response = jsonify(_state(session_id))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/sessions/<int:session_id>/preview.jpg")
def session_preview(session_id: int) -> Response:
    """The latest picture of the session's camera, faces boxed and named (live_preview), for
    those who may read the session (the API says, asked with their token), taken during it.
    None recent: 204 (the camera or its worker is idle, which is no error of the page's)."""
    context = web()
    if context.settings.web_preview_refresh_s == 0:
        abort(404, description="Camera previews are turned off (WEB_PREVIEW_REFRESH_S=0).")
    session = context.session_access.session(user_api(), identity.token(), session_id)
    camera_id = str(session.get("camera_id", ""))
    preview = context.previews.latest(camera_id)
    if preview is None or not Visible.from_api([session]).covers(camera_id, preview.captured_at):
        return Response(status=204, headers={"Cache-Control": "no-store"})
    return Response(
        preview.jpeg,
        mimetype="image/jpeg",
        # Faces: biometric data, never kept by the browser or a proxy.
        headers={"Cache-Control": "no-store, private", "X-Captured-At": preview.captured_at.isoformat()},
    )


@bp.get("/sessions/<int:session_id>/review.json")
def session_review_count(session_id: int) -> Response:
    """How many faces of the session wait in its review queue (the live page polls it)."""
    response = jsonify(session_id=session_id, open=_review_count(user_api(), session_id))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/sessions/current.json")
def current_sessions() -> Response:
    ids = sorted(int(s["id"]) for s in user_api().current_sessions())
    response = jsonify(session_ids=ids)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/events")
def events() -> Response:
    """Server-Sent Events: one long response per open live page, holding one server thread.

    Only the events of the sessions the signed-in person may see (module docstring)."""
    context = web()
    api = user_api()  # made now: the stream outlives the request and its context
    wanted = request.args.getlist("session", type=int)
    visible = visible_sessions(api, wanted)  # a 401 here signs the person out (app.py)

    def refresh() -> Visible | None:
        try:
            return visible_sessions(api, wanted)
        except ApiRefusedError as error:
            if error.status == 401:
                return None
            raise

    try:
        subscription = context.hub.subscribe(visible)
    except TooManyClientsError as error:
        logger.warning("refused a live client: %s", error)
        return Response(
            "Too many live pages open; retrying shortly.\n",
            status=503,
            mimetype="text/plain",
            headers={"Retry-After": "10"},
        )
    return Response(
        sse.stream(context.hub, subscription, context.settings.web_sse_keepalive_s, refresh, sse.REFRESH_S),
        mimetype="text/event-stream",
        # no-transform and X-Accel-Buffering: proxies must pass each event on at once.
        headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
    )


@bp.get("/health")
def health() -> Response:
    """200 while the dashboard serves pages; says whether the API and live events work."""
    context = web()
    try:
        api_status = str(context.api.health().get("status", "unknown"))
    except ApiUnreachableError as error:
        api_status = f"unreachable: {error.reason}"
    except ApiRefusedError as error:
        api_status = f"error {error.status}: {error.detail}"
    broker = context.hub.broker
    healthy = api_status == "ok" and broker.connected
    return jsonify(
        status="ok" if healthy else "degraded",
        api=api_status,
        api_url=context.api.base_url,
        broker="connected" if broker.connected else broker.detail,
        live_clients=context.hub.client_count,
    )


@bp.get("/cameras/load")
def camera_load() -> str:
    """Per camera, frames offered and processed per second over the last 30 s and whether it is
    under-served (services.web.camera_loads); the page reloads itself every few seconds."""
    return render_template("cameras_load.html", cameras=web().camera_loads.snapshot(), retry_s=5)


@bp.get("/cameras/load.json")
def camera_load_json() -> Response:
    """The same as JSON, for monitoring (signed in, like every page but /health)."""
    return jsonify(cameras=web().camera_loads.snapshot())
