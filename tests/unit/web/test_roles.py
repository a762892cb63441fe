"""What each role is shown: a viewer gets no form that changes anything, a teacher may add photos
but not add or delete students, only an admin sees the admin pages. The URLs of hidden forms
answer 403 without calling the API."""

import re

import httpx
import pytest
from flask.testing import FlaskClient

from tests.unit.web.fakes import FakeApi, form_token, make_app, signed_in_client

ADMIN_LINKS = ("/admin/users", "/admin/tokens", "/admin/courses", "/admin/audit")


def client_as(role: str, api: FakeApi | None = None) -> FlaskClient:
    return signed_in_client(make_app(api or FakeApi()), role)


def post_forms(page: str) -> list[str]:
    """The action of every POST form on a page, except signing out."""
    actions = re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"', page)
    return [action for action in actions if action != "/logout"]


@pytest.mark.parametrize("path", ["/", "/students", "/students/1", "/sessions", "/sessions/4"])
def test_a_viewer_sees_no_form_that_changes_anything(path: str) -> None:
    page = client_as("viewer").get(path).get_data(as_text=True)
    assert post_forms(page) == []
    assert "/delete" not in page
    assert not any(link in page for link in ADMIN_LINKS)


def test_a_teacher_may_add_photos_but_not_add_or_delete_students() -> None:
    client = client_as("teacher")
    students = client.get("/students").get_data(as_text=True)
    assert post_forms(students) == []
    assert "Add a student" not in students and "/delete" not in students
    student = client.get("/students/1").get_data(as_text=True)
    assert post_forms(student) == ["/students/1/photos", "/students/1/consent"]
    assert "/delete" not in student
    assert not any(link in student for link in ADMIN_LINKS)


def test_an_admin_sees_everything() -> None:
    client = client_as("admin")
    students = client.get("/students").get_data(as_text=True)
    assert post_forms(students) == ["/students"]
    assert "/students/1/delete" in students
    student = client.get("/students/1").get_data(as_text=True)
    assert post_forms(student) == ["/students/1/photos", "/students/1/consent"]
    assert "/students/1/delete" in student
    assert all(link in students for link in ADMIN_LINKS)


@pytest.mark.parametrize(
    ("role", "method", "path"),
    [
        ("viewer", "POST", "/students"),
        ("viewer", "POST", "/students/1/photos"),
        ("viewer", "POST", "/students/1/consent"),
        ("viewer", "GET", "/students/1/delete"),
        ("viewer", "POST", "/students/1/delete"),
        ("teacher", "POST", "/students"),
        ("teacher", "POST", "/students/1/delete"),
        ("teacher", "GET", "/admin/users"),
        ("viewer", "GET", "/admin/tokens"),
        ("viewer", "POST", "/admin/tokens"),
        ("teacher", "POST", "/admin/users/1/disable"),
        ("viewer", "GET", "/admin/audit"),
        ("teacher", "GET", "/imports"),
        ("teacher", "POST", "/imports"),
        ("viewer", "GET", "/imports/1"),
        ("teacher", "GET", "/imports/1/state.json"),
        ("viewer", "POST", "/imports/1/apply"),
        ("teacher", "POST", "/imports/1/discard"),
    ],
)
def test_what_a_role_may_not_do_is_refused_before_the_api(role: str, method: str, path: str) -> None:
    api = FakeApi()
    client = client_as(role, api)
    token = form_token(client, "/students")
    api.requests.clear()
    response = client.open(
        path, method=method, data={"csrf_token": token, "student_number": "S9", "name": "X"}
    )
    assert response.status_code == 403
    assert f"A {role} may not do this" in response.get_data(as_text=True)
    assert api.requests == []


def test_an_api_refusal_is_a_403_page_not_an_api_error() -> None:
    refuse = httpx.Response(403, json={"detail": "not a student of your courses"})
    api = FakeApi({("GET", "/students/1"): lambda r, user: refuse})
    response = client_as("teacher", api).get("/students/1")
    assert response.status_code == 403
    assert "Not allowed: not a student of your courses." in response.get_data(as_text=True)


def test_a_teacher_without_the_camera_list_still_gets_the_sessions_page() -> None:
    api = FakeApi({("GET", "/cameras"): lambda r, user: httpx.Response(403, json={"detail": "admins only"})})
    response = client_as("teacher", api).get("/sessions")
    assert response.status_code == 200
    assert "Maths" in response.get_data(as_text=True)


def test_the_header_shows_who_is_signed_in_and_a_sign_out_button() -> None:
    page = client_as("viewer").get("/").get_data(as_text=True)
    assert re.search(
        r'<span class="signed-in-as">Viewer Person <span class="role">viewer</span></span>', page
    )
    assert re.search(r'<button type="submit" class="logout">Sign out</button>', page)
    assert 'data-role="viewer"' in page
