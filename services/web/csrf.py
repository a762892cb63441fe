"""A per-session form token, checked on every POST: another site cannot make a visitor's
browser add or delete students (the dashboard has no login of its own)."""

import hmac
import logging
import secrets

from flask import Flask, abort, request, session

logger = logging.getLogger(__name__)

FIELD = "csrf_token"
EXPIRED = "This form has expired (or came from another site). Reload the page and try again."


def token() -> str:
    if FIELD not in session:
        session[FIELD] = secrets.token_urlsafe(24)
    return str(session[FIELD])


def _check() -> None:
    if request.method != "POST":
        return
    expected = session.get(FIELD)
    given = request.form.get(FIELD, "")
    if not expected or not hmac.compare_digest(str(expected), given):
        logger.warning("refused a POST to %s without a valid form token", request.path)
        abort(400, description=EXPIRED)


def init_app(app: Flask) -> None:
    app.before_request(_check)
    app.jinja_env.globals["csrf_token"] = token
