"""Signing in and out, and the guard in front of every other page.

`/login` hands the username and password to the API (POST /auth/login) and keeps what it
answers, the person's session token, its expiry and who they are, in the signed session
cookie; `/logout` revokes the token at the API and forgets it. The API limits login attempts
(429 with Retry-After); the dashboard passes the browser's address along and shows the wait.

The guard (`require_sign_in`, run before every request, before the form-token check) lets
anonymous people reach only /login, /health and the static files. Pages send them to
`/login?next=<the page>`; the live page's JSON, its event stream and downloads answer 401,
which a script can act on and a redirect would only hide.
"""

import logging

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from services.web import identity
from services.web.api_client import ApiRefusedError, ApiUnreachableError
from services.web.context import user_api, web

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

# Endpoints anyone may reach (docs/auth-contract.md).
OPEN_ENDPOINTS = frozenset({"auth.login", "live.health", "static"})
EXPIRED = "Your session has ended (it expired, or you were signed out elsewhere): sign in again."


def machine_url() -> bool:
    """A URL read by scripts, the event stream, an image or a download, not shown as a page."""
    path = request.path
    return (
        path.endswith((".json", ".csv", ".jpg", ".svg"))
        or path in ("/events", "/health")
        or "text/event-stream" in request.headers.get("Accept", "")
    )


def signed_out(message: str | None = None) -> ResponseReturnValue:
    """What a request without a (valid) session gets: a 401 for scripts, the login page for people."""
    if machine_url():
        return jsonify(detail="not signed in"), 401
    if message:
        flash(message, "error")
    # Only a page one can come back to is remembered: a form's POST is not replayed.
    target = identity.safe_next(request.full_path.rstrip("?")) if request.method == "GET" else None
    login = url_for("auth.login", next=target) if target and target != "/" else url_for("auth.login")
    return redirect(login, 302 if request.method == "GET" else 303)


def require_sign_in() -> ResponseReturnValue | None:
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if identity.signed_in():
        return None
    expired = identity.KEY in session
    identity.sign_out()
    return signed_out(EXPIRED if expired else None)


def api_signed_us_out() -> ResponseReturnValue:
    """The API refused the person's token (expired, revoked, user disabled): sign them out here too."""
    logger.info("%s %s: the API no longer accepts this session's token", request.method, request.path)
    identity.sign_out()
    return signed_out(EXPIRED)


def _login_page(target: str | None, username: str = "", error: str = "", status: int = 200) -> Response:
    page = render_template("login.html", next=target or "", username=username, error=error)
    response = Response(page, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    target = identity.safe_next(request.values.get("next"))
    if request.method == "GET":
        if identity.signed_in():
            return redirect(target or url_for("live.index"))
        return _login_page(target)
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    if not username or not password:
        return _login_page(target, username, "Enter your username and password.", 400)
    try:
        answer = web().api.login(username, password, client_address=request.remote_addr)
    except ApiRefusedError as error:
        if error.status == 401:
            logger.info("refused a sign-in as %r", username)
            return _login_page(target, username, "Wrong username or password.", 401)
        if error.status == 429:
            wait = f" in {error.retry_after_s} s" if error.retry_after_s else " later"
            response = _login_page(target, username, f"Too many sign-in attempts: try again{wait}.", 429)
            if error.retry_after_s:
                response.headers["Retry-After"] = str(error.retry_after_s)
            return response
        if error.status in (400, 403, 422):
            return _login_page(target, username, f"Not signed in: {error.detail}", error.status)
        raise
    user = identity.sign_in(answer)
    logger.info("%s signed in (%s)", user.username, user.role)
    return redirect(target or url_for("live.index"), 303)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    try:
        user_api().logout()
    except ApiRefusedError as error:
        if error.status != 401:  # 401: the token was already gone
            logger.warning("logout: %s", error)
    except ApiUnreachableError as error:
        # Forgotten here all the same; at the API the token lasts until it expires.
        logger.warning("logout: the token could not be revoked (%s)", error)
    identity.sign_out()
    flash("Signed out.", "ok")
    return redirect(url_for("auth.login"), 303)
