"""Students: create, search, read, edit (photos and deletion are in test_photos.py)."""

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from tests.integration.api.helpers import new_student

pytestmark = pytest.mark.integration


def test_a_created_student_is_returned_with_its_fields(client: TestClient) -> None:
    response = client.post("/students", json={"student_number": " S001 ", "name": "Ada Lovelace"})
    assert response.status_code == 201
    student = response.json()
    assert set(student) == {
        "id", "student_number", "name", "photo_count", "created_at", "consent_at", "consent_by", "consent_note",
    }  # fmt: skip
    assert student["student_number"] == "S001"  # surrounding spaces are not part of a number
    assert student["photo_count"] == 0
    assert (student["consent_at"], student["consent_by"], student["consent_note"]) == (None, None, "")
    assert datetime.fromisoformat(student["created_at"]).utcoffset() is not None
    assert client.get(f"/students/{student['id']}").json() == student


def test_a_duplicate_student_number_is_a_conflict(client: TestClient) -> None:
    new_student(client, "S001", "Ada Lovelace")
    response = client.post("/students", json={"student_number": "S001", "name": "Someone Else"})
    assert response.status_code == 409
    assert "S001" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            {"student_number": "S" * 65, "name": "Ada"},
            "student_number: String should have at most 64 characters",
        ),
        ({"student_number": "S001"}, "name: Field required"),
        ({"student_number": "S001", "name": "   "}, "name: String should have at least 1 character"),
        ({"student_number": "S001", "name": "Ada", "photo": "x"}, "photo: Extra inputs are not permitted"),
    ],
)
def test_an_invalid_student_is_refused_with_a_readable_sentence(
    client: TestClient, body: dict[str, str], detail: str
) -> None:
    response = client.post("/students", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == detail
    assert isinstance(response.json()["errors"], list)


def test_a_body_that_is_not_json_is_refused_clearly(client: TestClient) -> None:
    response = client.post("/students", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"] == "the request body is not valid JSON"


def test_search_matches_name_or_number_in_any_case_ordered_by_name(client: TestClient) -> None:
    new_student(client, "S003", "Charles Babbage")
    new_student(client, "S001", "Ada Lovelace")
    new_student(client, "X100", "Grace Hopper")
    everyone = client.get("/students").json()
    assert [s["name"] for s in everyone["items"]] == ["Ada Lovelace", "Charles Babbage", "Grace Hopper"]
    assert everyone["total"] == 3
    assert (everyone["page"], everyone["page_size"]) == (1, 50)
    assert [s["name"] for s in client.get("/students", params={"query": "LOVE"}).json()["items"]] == [
        "Ada Lovelace"
    ]
    assert [s["name"] for s in client.get("/students", params={"query": "s00"}).json()["items"]] == [
        "Ada Lovelace",
        "Charles Babbage",
    ]
    # LIKE's wildcards are taken literally.
    assert client.get("/students", params={"query": "%"}).json()["total"] == 0


def test_students_are_listed_page_by_page(client: TestClient) -> None:
    for n in range(5):
        new_student(client, f"S{n}", f"Student {n}")
    page = client.get("/students", params={"page": 2, "page_size": 2}).json()
    assert [s["name"] for s in page["items"]] == ["Student 2", "Student 3"]
    assert (page["total"], page["page"], page["page_size"]) == (5, 2, 2)
    response = client.get("/students", params={"page": 0})
    assert response.status_code == 422
    assert response.json()["detail"] == "page: Input should be greater than or equal to 1"


def test_an_unknown_student_is_not_found(client: TestClient) -> None:
    for method, path in [("GET", "/students/999"), ("PATCH", "/students/999"), ("DELETE", "/students/999")]:
        response = client.request(method, path, json={"name": "X"} if method == "PATCH" else None)
        assert response.status_code == 404, (method, response.text)
        assert response.json()["detail"] == "student 999 does not exist"


def test_a_non_numeric_id_is_refused(client: TestClient) -> None:
    response = client.get("/students/abc")
    assert response.status_code == 422
    assert response.json()["detail"].startswith("student_id: Input should be a valid integer")


def test_a_student_can_be_renamed_and_renumbered(client: TestClient) -> None:
    student = new_student(client, "S001", "Ada Lovelace")
    response = client.patch(f"/students/{student['id']}", json={"name": "Ada King"})
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["student_number"]) == ("Ada King", "S001")
    response = client.patch(f"/students/{student['id']}", json={"student_number": "S002"})
    assert response.json()["student_number"] == "S002"
    assert client.get(f"/students/{student['id']}").json()["name"] == "Ada King"


def test_renumbering_onto_another_students_number_is_a_conflict(client: TestClient) -> None:
    new_student(client, "S001", "Ada Lovelace")
    other = new_student(client, "S002", "Charles Babbage")
    response = client.patch(f"/students/{other['id']}", json={"student_number": "S001"})
    assert response.status_code == 409
    assert client.get(f"/students/{other['id']}").json()["student_number"] == "S002"


def test_a_huge_page_number_is_refused_not_a_server_error(client: TestClient) -> None:
    # Issue 9, finding 16: page=10**20 was a 500 (the OFFSET overflowed), read as "API unreachable".
    response = client.get("/students", params={"page": 10**20})
    assert response.status_code == 422
    assert response.json()["detail"] == "page: Input should be less than or equal to 10000"
