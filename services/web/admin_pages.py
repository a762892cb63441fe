"""Admin pages: users, API tokens, course teachers and the audit log, all through the API
(docs/auth-contract.md) with the admin's own token.

Only admins see these pages (the links are hidden from other roles, the URLs answer 403, and
the API refuses anyway). A new API token is shown once, on the page that answers the form:
never put in a redirect or a flash message, which would keep it in the cookie.
"""

import logging
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest

from services.web import identity, views
from services.web.api_client import ApiClient, ApiRefusedError
from services.web.context import user_api, web

logger = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")

AUDIT_PAGE_SIZE = 50
MAX_PAGE = 1_000_000  # a page number past any real log is read as this one
# The API refuses shorter passwords (422); saying so before the round trip reads better.
MIN_PASSWORD = 12


@bp.before_request
def _admins_only() -> None:
    identity.require("admin")


def _local(value: Any) -> str:
    return views.local_datetime(value, web().settings.tz) if value else ""


def _refusal(error: ApiRefusedError, *statuses: int) -> str:
    """The API's reason for a refusal a form can show; other errors go to the error page."""
    if error.status not in statuses:
        raise error
    return error.detail


# Users


def _users_page(api: ApiClient, form: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    users = [{**u, "created": _local(u.get("created_at"))} for u in api.users()]
    users.sort(key=lambda u: str(u.get("username", "")).lower())
    return render_template("admin_users.html", users=users, roles=identity.ROLES, form=form or {}), status


@bp.get("")
def index() -> ResponseReturnValue:
    return redirect(url_for("admin.users"))


@bp.get("/users")
def users() -> ResponseReturnValue:
    return _users_page(user_api())


@bp.post("/users")
def create_user() -> ResponseReturnValue:
    api = user_api()
    form = {key: request.form.get(key, "").strip() for key in ("username", "display_name", "role")}
    password = request.form.get("password", "")
    if not form["username"] or form["role"] not in identity.ROLES:
        flash("A user needs a username and a role.", "error")
        return _users_page(api, form, 400)
    if len(password) < MIN_PASSWORD:
        flash(f"A password needs at least {MIN_PASSWORD} characters.", "error")
        return _users_page(api, form, 422)
    try:
        user = api.create_user(
            form["username"], form["display_name"] or form["username"], form["role"], password
        )
    except ApiRefusedError as error:
        flash(f"User not added: {_refusal(error, 400, 409, 422)}", "error")
        return _users_page(api, form, error.status)
    logger.info("user %s (%s) created", user.get("username"), user.get("role"))
    flash(f"Added {user.get('username')} ({user.get('role')}).", "ok")
    return redirect(url_for("admin.users"), 303)


def _change_user(user_id: int, done: str, **changes: Any) -> ResponseReturnValue:
    try:
        user = user_api().update_user(user_id, **changes)
    except ApiRefusedError as error:
        flash(f"Not changed: {_refusal(error, 400, 409, 422)}", "error")
    else:
        flash(done.format(username=user.get("username", user_id)), "ok")
    return redirect(url_for("admin.users"), 303)


@bp.post("/users/<int:user_id>/disable")
def disable_user(user_id: int) -> ResponseReturnValue:
    me = identity.require("admin")
    if me.id == user_id:
        flash("You cannot disable yourself: ask another admin.", "error")
        return redirect(url_for("admin.users"), 303)
    return _change_user(user_id, "Disabled {username}: signed out everywhere.", disabled=True)


@bp.post("/users/<int:user_id>/enable")
def enable_user(user_id: int) -> ResponseReturnValue:
    return _change_user(user_id, "Enabled {username}.", disabled=False)


@bp.post("/users/<int:user_id>/role")
def change_role(user_id: int) -> ResponseReturnValue:
    role = request.form.get("role", "")
    if role not in identity.ROLES:
        raise BadRequest(f"Not a role: {role!r}.")
    return _change_user(user_id, f"{{username}} is now {role}.", role=role)


@bp.post("/users/<int:user_id>/password")
def reset_password(user_id: int) -> ResponseReturnValue:
    password = request.form.get("password", "")
    if len(password) < MIN_PASSWORD:
        flash(f"Password not changed: it needs at least {MIN_PASSWORD} characters.", "error")
        return redirect(url_for("admin.users"), 303)
    return _change_user(
        user_id, "New password set for {username}: their sessions are signed out.", password=password
    )


# API tokens


def _tokens_page(new_token: dict[str, Any] | None = None, status: int = 200) -> Response:
    api = user_api()
    names = {u["id"]: u.get("username", "") for u in api.users()}
    tokens = [
        {
            **t,
            "created": _local(t.get("created_at")),
            "last_used": _local(t.get("last_used_at")),
            "revoked": _local(t.get("revoked_at")),
            "creator": names.get(t.get("created_by"), t.get("created_by") or ""),
        }
        for t in api.tokens()
    ]
    page = render_template("admin_tokens.html", tokens=tokens, roles=identity.ROLES, new_token=new_token)
    response = Response(page, status=status)
    response.headers["Cache-Control"] = "no-store"  # the new token must not stay in any cache
    return response


@bp.get("/tokens")
def tokens() -> ResponseReturnValue:
    return _tokens_page()


@bp.post("/tokens")
def create_token() -> ResponseReturnValue:
    name = request.form.get("name", "").strip()
    role = request.form.get("role", "")
    if not name or role not in identity.ROLES:
        flash("A token needs a name (what program uses it) and a role.", "error")
        return _tokens_page(status=400)
    try:
        created = user_api().create_token(name, role)
    except ApiRefusedError as error:
        flash(f"Token not created: {_refusal(error, 400, 409, 422)}", "error")
        return _tokens_page(status=error.status)
    logger.info("API token %s (%s) created", created.get("id"), role)
    return _tokens_page(new_token=created, status=201)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int) -> ResponseReturnValue:
    user_api().revoke_token(token_id)
    logger.info("API token %d revoked", token_id)
    flash(f"Token {token_id} revoked: programs using it are refused from now on.", "ok")
    return redirect(url_for("admin.tokens"), 303)


# Course teachers


@bp.get("/courses")
def courses() -> ResponseReturnValue:
    api = user_api()
    users = api.users()
    teachers = sorted(
        (u for u in users if u.get("role") == "teacher"), key=lambda u: str(u.get("username", "")).lower()
    )
    names = {u["id"]: u.get("display_name") or u.get("username") for u in users}
    courses = sorted(api.courses(), key=lambda c: str(c.get("code", "")))
    return render_template("admin_courses.html", courses=courses, teachers=teachers, names=names)


@bp.post("/courses/<int:course_id>/teachers")
def set_teachers(course_id: int) -> ResponseReturnValue:
    user_ids = sorted({value for value in request.form.getlist("user_ids", type=int) if value > 0})
    try:
        course = user_api().set_course_teachers(course_id, user_ids)
    except ApiRefusedError as error:
        flash(f"Teachers not changed: {_refusal(error, 400, 422)}", "error")
    else:
        count = len(course.get("teacher_ids", user_ids))
        flash(f"{course.get('code', course_id)} now has {count} teacher(s).", "ok")
    return redirect(url_for("admin.courses"), 303)


# Audit log


@bp.get("/audit")
def audit() -> ResponseReturnValue:
    page = max(1, min(request.args.get("page", 1, type=int) or 1, MAX_PAGE))
    result = user_api().audit(page=page, page_size=AUDIT_PAGE_SIZE)
    total = int(result.get("total", 0))
    items = [{**item, "when": _local(item.get("at"))} for item in result.get("items", [])]
    return render_template(
        "admin_audit.html",
        items=items,
        total=total,
        page=page,
        pages=views.page_count(total, AUDIT_PAGE_SIZE),
    )
